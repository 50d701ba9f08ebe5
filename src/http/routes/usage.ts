import { freemem, totalmem } from 'node:os';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { authorize } from '../../core/permissions.js';
import { parseInput } from '../../core/validate.js';
import { Errors } from '../../core/errors.js';
import { Members, Metric } from '../../metering/meter.js';
import { distinct, type Granularity, usageReport } from '../../metering/report.js';
import { renderMetrics } from '../../metering/prometheus.js';
import type { RouteDef } from '../route.js';

const HOUR = 3_600_000;

/** A time given as epoch ms or ISO 8601. */
function time(raw: string | null, fallback: number, name: string): number {
  if (raw === null || raw === '') return fallback;
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

/** Key usage metering, IMKIT's stats, application settings, Prometheus and the dashboard. */
export const usageRoutes: RouteDef[] = [
  {
    method: 'GET', path: '/admin/usage', auth: 'actor',
    handle: async ({ core, actor, req, config }) => {
      authorize(actor, 'app.settings');
      const now = Date.now();
      const to = time(req.query.get('to'), now, 'to');
      const from = time(req.query.get('from'), to - HOUR, 'from');
      const granularity = (req.query.get('granularity') ?? 'minute') as Granularity;
      if (!['minute', 'hour', 'day'].includes(granularity)) throw Errors.invalidInput('granularity: minute, hour or day');
      if (from > to) throw Errors.invalidInput('from: must not be after to');
      if (to - from > config.usageRetentionDays * 86_400_000) throw Errors.invalidInput(`the range may span at most the retention (${config.usageRetentionDays} days)`);
      await core.usage.meter.flush();
      const report = await usageReport(core.usage.sink, actor.app.id, from, to, granularity);
      return { ...report, activeUsers: report.activeUsers.length, activeRooms: report.activeRooms.length };
    },
  },
  {
    method: 'GET', path: '/admin/stats', auth: 'actor',
    handle: async ({ core, actor, req, config }) => {
      authorize(actor, 'app.settings');
      const end = time(req.query.get('end'), Date.now(), 'end');
      const start = time(req.query.get('start'), end - HOUR, 'start');
      if (start > end) throw Errors.invalidInput('start: must not be after end');
      if (end - start > config.usageRetentionDays * 86_400_000) throw Errors.invalidInput(`the range may span at most the retention (${config.usageRetentionDays} days)`);
      await core.usage.meter.flush();
      const buckets = await core.usage.sink.read(actor.app.id, Math.floor(start / 60_000), Math.floor(end / 60_000));
      const sum = (metric: string) => buckets.reduce((n, b) => n + (b.values[metric] ?? 0), 0);
      return {
        clientKey: actor.app.clientKey?.token ?? null,
        clientId: actor.app.id,
        startTime: start,
        endTime: end,
        start: new Date(start).toISOString(),
        end: new Date(end).toISOString(),
        userList: distinct(buckets, Members.activeUsers),
        roomCount: distinct(buckets, Members.activeRooms).length,
        totalRoomCount: await core.store.countRooms(actor.app.id),
        messageCount: sum(Metric.messagesRest) + sum(Metric.messagesSocket),
        peakConnectionCount: Math.max(0, ...buckets.map((b) => b.values[Metric.connectionsPeak] ?? 0)),
        totalMem: totalmem(),
        freeMem: freemem(),
      };
    },
  },
  {
    method: 'GET', path: '/admin/settings', auth: 'actor',
    handle: async ({ core, actor }) => {
      authorize(actor, 'app.settings');
      return settingsView(await core.apps.getApp(actor.app.id));
    },
  },
  {
    method: 'PUT', path: '/admin/settings', auth: 'actor',
    handle: async ({ core, actor, body }) => {
      authorize(actor, 'app.settings');
      return settingsView(await core.apps.updateSettings(actor.app.id, parseInput(settingsSchema, body())));
    },
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
