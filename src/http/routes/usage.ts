import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { parseInput } from '../../core/validate.js';
import { Errors } from '../../core/errors.js';
import { renderMetrics } from '../../metering/prometheus.js';
import type { RouteDef } from '../route.js';

/** A time given as epoch ms or ISO 8601; undefined when absent. */
function time(raw: string | null, name: string): number | undefined {
  if (raw === null || raw === '') return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  // Only instants a Date can hold (|ms| <= 8.64e15): anything else is not a date.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw Errors.invalidInput(`${name}: epoch milliseconds or an ISO 8601 date`);
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

/** The dashboard's charting library (uPlot, MIT), served from node_modules: the page needs no CDN. */
const VENDOR: Record<string, { file: string; type: string }> = {
  'uplot.min.js': { file: 'uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.min.css': { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' },
};
const vendorFiles = new Map<string, Promise<string>>();
const vendorFile = (name: string): Promise<string> => {
  let file = vendorFiles.get(name);
  if (!file) vendorFiles.set(name, (file = readFile(createRequire(import.meta.url).resolve(`uplot/dist/${VENDOR[name]!.file}`), 'utf8')));
  return file;
};

/** Key usage metering, IMKIT's stats, application settings, Prometheus and the dashboard. */
export const usageRoutes: RouteDef[] = [
  {
    method: 'GET', path: '/admin/usage', summary: 'Key usage series and alerts', auth: 'actor',
    query: { from: 'epoch ms or ISO 8601 (default: an hour before to)', to: 'epoch ms or ISO 8601 (default: now)', granularity: 'minute, hour or day' },
    handle: ({ core, actor, req }) =>
      core.usage.report(actor, {
        from: time(req.query.get('from'), 'from'),
        to: time(req.query.get('to'), 'to'),
        granularity: req.query.get('granularity') ?? undefined,
      }),
  },
  {
    method: 'GET', path: '/admin/stats', summary: "IMKIT's usage statistics", query: { start: 'epoch ms or ISO 8601', end: 'epoch ms or ISO 8601' }, auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.usage.stats(actor, { start: time(req.query.get('start'), 'start'), end: time(req.query.get('end'), 'end') }),
  },
  {
    method: 'GET', path: '/admin/settings', summary: 'Application name, domains and allowed origins', auth: 'actor',
    handle: async ({ core, actor }) => settingsView(await core.apps.settingsOf(actor)),
  },
  {
    method: 'PUT', path: '/admin/settings', summary: 'Edit name, domains and allowed origins', body: settingsSchema, auth: 'actor',
    handle: async ({ core, actor, body }) => settingsView(await core.apps.changeSettings(actor, parseInput(settingsSchema, body()))),
  },
  {
    method: 'GET', path: '/metrics', summary: 'Prometheus metrics (ROOMCAST_METRICS=true)', auth: 'public', raw: true,
    handle: async ({ core, config }) => {
      if (!config.metrics) throw Errors.notFound('ROUTE', 'GET /metrics (enable with ROOMCAST_METRICS=true)');
      const { contentType, text } = await renderMetrics(core);
      return { status: 200, headers: { 'content-type': contentType }, body: text };
    },
  },
  {
    method: 'GET', path: '/dashboard', summary: 'The dashboard page', auth: 'public', raw: true,
    handle: async () => ({
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        // The page only talks to this server; the API key never leaves it but in headers.
        'content-security-policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      },
      body: await (dashboardPage ??= readFile(new URL('../../../static/dashboard.html', import.meta.url), 'utf8')),
    }),
  },
  {
    method: 'GET', path: '/vendor/:file', summary: "The dashboard's charting library (uplot.min.js, uplot.min.css)", auth: 'public', raw: true,
    handle: async ({ params }) => {
      const entry = VENDOR[params.file!];
      if (!entry || !Object.hasOwn(VENDOR, params.file!)) throw Errors.notFound('ROUTE', `GET /vendor/${params.file}`);
      return { status: 200, headers: { 'content-type': entry.type, 'cache-control': 'public, max-age=86400' }, body: await vendorFile(params.file!) };
    },
  },
];
