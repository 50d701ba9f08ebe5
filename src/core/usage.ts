import { freemem, totalmem } from 'node:os';
import type { Presence } from '../presence/presence.js';
import { Members, Metric, type UsageMeter } from '../metering/meter.js';
import type { PrometheusExporter } from '../metering/prometheus.js';
import { distinct, type Granularity, usageReport } from '../metering/report.js';
import type { UsageSink } from '../metering/sink.js';
import type { Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import { authorize } from './permissions.js';

const HOUR = 3_600_000;
const isGranularity = (g: string): g is Granularity => g === 'minute' || g === 'hour' || g === 'day';

export interface UsageQuery {
  from?: number;
  to?: number;
  granularity?: string;
}

/**
 * Key usage, IMKIT's stats and connection counts for the application's administrator: the
 * one way HTTP reaches the usage sink and presence. The in-memory meter is shared: the
 * gateway and the HTTP layer count into it.
 */
export class UsageService {
  constructor(
    readonly meter: UsageMeter,
    private sink: UsageSink,
    private presence: Presence,
    private store: Store,
    private clock: Clock,
    private retentionDays: number,
    /** Present when `/metrics` is enabled. */
    readonly exporter?: PrometheusExporter,
  ) {}

  /** `GET /admin/usage`: the series, totals and alerts over a range (at most the retention). */
  async report(actor: Actor, query: UsageQuery) {
    authorize(actor, 'usage.read');
    const to = query.to ?? this.clock.now();
    const from = query.from ?? to - HOUR;
    const granularity = query.granularity ?? 'minute';
    if (!isGranularity(granularity)) throw Errors.invalidInput('granularity: minute, hour or day');
    if (from > to) throw Errors.invalidInput('from: must not be after to');
    if (to - from > this.retentionDays * 86_400_000) throw Errors.invalidInput(`the range may span at most the retention (${this.retentionDays} days)`);
    await this.meter.flush();
    const report = await usageReport(this.sink, actor.app.id, from, to, granularity);
    return { ...report, activeUsers: report.activeUsers.length, activeRooms: report.activeRooms.length };
  }

  /** `GET /admin/stats`: IMKIT's last-hour report. */
  async stats(actor: Actor, range: { start?: number; end?: number }) {
    authorize(actor, 'usage.read');
    const end = range.end ?? this.clock.now();
    const start = range.start ?? end - HOUR;
    // A bounded range: reading buckets costs one step per minute of it.
    if (start > end) throw Errors.invalidInput('start: must not be after end');
    if (end - start > this.retentionDays * 86_400_000) throw Errors.invalidInput(`the range may span at most the retention (${this.retentionDays} days)`);
    await this.meter.flush();
    const buckets = await this.sink.read(actor.app.id, Math.floor(start / 60_000), Math.floor(end / 60_000));
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
      totalRoomCount: await this.store.countRooms(actor.app.id),
      messageCount: sum(Metric.messagesRest) + sum(Metric.messagesSocket),
      peakConnectionCount: Math.max(0, ...buckets.map((b) => b.values[Metric.connectionsPeak] ?? 0)),
      totalMem: totalmem(),
      freeMem: freemem(),
    };
  }

  /** `GET /admin/connection-count`: sockets of the application (or one user), cluster-wide or on this node. */
  async connectionCount(actor: Actor, query: { userId?: string; scope: string }) {
    authorize(actor, 'connections.read');
    const { userId, scope } = query;
    const client = userId ? { client: userId } : {};
    if (scope === 'node') {
      return { count: this.presence.localConnectionCount(actor.app.id, userId), scope, node: this.presence.nodeId, ...client };
    }
    if (scope !== 'cluster') throw Errors.invalidInput("scope: 'cluster' or 'node'");
    const count = userId === undefined ? await this.presence.connectionCount(actor.app.id) : await this.presence.userConnectionCount(actor.app.id, userId);
    return { count, scope, ...client };
  }
}
