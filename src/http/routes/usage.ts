import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseInput } from '../../core/validate.js';
import { Errors } from '../../core/errors.js';
import { renderMetrics } from '../../metering/prometheus.js';
import type { RouteDef } from '../route.js';

/** A time given as epoch ms or ISO 8601; undefined when absent. */
function time(raw: string | null, name: string): number | undefined {
  if (raw === null || raw === '') return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw Errors.invalidInput(`${name}: epoch milliseconds or an ISO 8601 date`);
  return ms;
}

const settingsSchema = z.strictObject({
  name: z.string().trim().min(1).max(128).optional(),
  domains: z.array(z.string().trim().min(1).max(253)).max(100).optional(),
  allowedOrigins: z.array(z.string().trim().regex(/^https?:\/\/[^/\s]+$/, 'an origin like https://app.example.com')).max(100).optional(),
});

const settingsView = (app: { id: string; name: string; domains: string[]; allowedOrigins?: string[] }) => ({
  id: app.id,
  name: app.name,
  domains: app.domains,
  allowedOrigins: app.allowedOrigins ?? [],
});

let dashboardPage: Promise<string> | undefined;

/** Key usage metering, IMKIT's stats, application settings, Prometheus and the dashboard. */
export const usageRoutes: RouteDef[] = [
  {
    method: 'GET', path: '/admin/usage', auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.usage.report(actor, {
        from: time(req.query.get('from'), 'from'),
        to: time(req.query.get('to'), 'to'),
        granularity: req.query.get('granularity') ?? undefined,
      }),
  },
  {
    method: 'GET', path: '/admin/stats', auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.usage.stats(actor, { start: time(req.query.get('start'), 'start'), end: time(req.query.get('end'), 'end') }),
  },
  {
    method: 'GET', path: '/admin/settings', auth: 'actor',
    handle: async ({ core, actor }) => settingsView(await core.apps.settingsOf(actor)),
  },
  {
    method: 'PUT', path: '/admin/settings', auth: 'actor',
    handle: async ({ core, actor, body }) => settingsView(await core.apps.changeSettings(actor, parseInput(settingsSchema, body()))),
  },
  {
    method: 'GET', path: '/metrics', auth: 'public', raw: true,
    handle: async ({ core, config }) => {
      if (!config.metrics) throw Errors.notFound('ROUTE', 'GET /metrics (enable with ROOMCAST_METRICS=true)');
      const { contentType, text } = await renderMetrics(core);
      return { status: 200, headers: { 'content-type': contentType }, body: text };
    },
  },
  {
    method: 'GET', path: '/dashboard', auth: 'public', raw: true,
    handle: async () => ({
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        // The page only talks to this server; the API key never leaves it but in headers.
        'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      },
      body: await (dashboardPage ??= readFile(new URL('../../../static/dashboard.html', import.meta.url), 'utf8')),
    }),
  },
];
