import type { Logger } from '../observability/logger.js';
import type { Minute, UsageDelta, UsageSink } from './sink.js';

/** Every metric roomcast counts per application (and so per client key: one per application). */
export const Metric = {
  handshakesAccepted: 'handshakes.accepted',
  /** Followed by `.<ERROR_CODE>`. */
  handshakesRefused: 'handshakes.refused',
  connectionsPeak: 'connections.peak',
  connectionMinutes: 'connections.minutes',
  messagesRest: 'messages.rest',
  messagesSocket: 'messages.socket',
  deliveries: 'deliveries',
  bytesIn: 'bytes.in',
  bytesOut: 'bytes.out',
  restApiKey: 'rest.apiKey',
  restClientKey: 'rest.clientKey',
  originRefused: 'origins.refused',
  /** Sockets cut because they stopped reading (their unsent output passed the limit). */
  slowConsumerCuts: 'sockets.slowConsumerCut',
} as const;

/** Distinct-member sets kept per bucket. */
export const Members = { activeUsers: 'users.active', activeRooms: 'rooms.active', refusedOrigins: 'origins.refused' } as const;

interface Pending {
  add: Map<string, number>;
  max: Map<string, number>;
  members: Map<string, Set<string>>;
}

const minuteOf = (ms: number): Minute => Math.floor(ms / 60_000);

/** Where the meter samples connection gauges. */
export interface ConnectionSource {
  /** This node's sockets per application (connection-minutes are summed across nodes). */
  local(): Map<string, number>;
  /** Cluster-wide sockets of one application (the peak is the cluster's, not a node's). */
  cluster(appId: string): Promise<number>;
}

/**
 * Usage metering that costs a map update on the hot path: counts accumulate in memory per
 * (application, minute) and are flushed to the sink in one batch every `flushMs` (and on
 * close). Connection gauges are sampled at each flush.
 */
export class UsageMeter {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private lastSampleMinute = minuteOf(Date.now());

  constructor(
    private sink: UsageSink,
    private connections: ConnectionSource,
    flushMs: number,
    /** Told when a batch cannot be written (the counts are kept for the next flush). */
    private log?: Pick<Logger, 'warn'>,
    private now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs).unref();
  }

  private listener?: (appId: string, metric: string, n: number) => void;

  /** One listener (the Prometheus exporter) sees every count as it happens. */
  listen(listener: (appId: string, metric: string, n: number) => void): void {
    this.listener = listener;
  }

  count(appId: string, metric: string, n = 1): void {
    if (n === 0) return;
    this.listener?.(appId, metric, n);
    const p = this.bucket(appId);
    p.add.set(metric, (p.add.get(metric) ?? 0) + n);
  }

  peak(appId: string, metric: string, value: number): void {
    const p = this.bucket(appId);
    p.max.set(metric, Math.max(p.max.get(metric) ?? 0, value));
  }

  member(appId: string, set: string, id: string): void {
    const p = this.bucket(appId);
    let members = p.members.get(set);
    if (!members) p.members.set(set, (members = new Set()));
    members.add(id);
  }

  /** Writes everything counted so far; resolves once the sink has it. */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .then(() => this.writePending())
      .catch((err: unknown) => this.log?.warn({ err }, 'usage metering: could not write to the usage sink; kept for the next flush'));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** The current minute's buckets by application: the hot path is one Map lookup. */
  private current: { minute: Minute; byApp: Map<string, Pending> } = { minute: -1, byApp: new Map() };

  private bucket(appId: string): Pending {
    const minute = minuteOf(this.now());
    if (minute !== this.current.minute) this.current = { minute, byApp: new Map() };
    let p = this.current.byApp.get(appId);
    if (!p) {
      const key = `${minute}|${appId}`;
      p = this.pending.get(key) ?? { add: new Map(), max: new Map(), members: new Map() };
      this.pending.set(key, p);
      this.current.byApp.set(appId, p);
    }
    return p;
  }

  private async writePending(): Promise<void> {
    await this.sampleConnections();
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.current = { minute: -1, byApp: new Map() };
    const deltas: UsageDelta[] = [...batch].map(([key, p]) => {
      const bar = key.indexOf('|');
      return {
        minute: Number(key.slice(0, bar)),
        appId: key.slice(bar + 1),
        add: Object.fromEntries(p.add),
        max: Object.fromEntries(p.max),
        members: Object.fromEntries([...p.members].map(([k, s]) => [k, [...s]])),
      };
    });
    try {
      await this.sink.write(deltas);
    } catch (err) {
      // Keep the counts for the next flush rather than lose them while the sink is away.
      for (const [key, p] of batch) {
        const [minute, appId] = [key.slice(0, key.indexOf('|')), key.slice(key.indexOf('|') + 1)];
        const target = this.pending.get(key) ?? { add: new Map(), max: new Map(), members: new Map() };
        for (const [k, v] of p.add) target.add.set(k, (target.add.get(k) ?? 0) + v);
        for (const [k, v] of p.max) target.max.set(k, Math.max(target.max.get(k) ?? 0, v));
        for (const [k, s] of p.members) target.members.set(k, new Set([...(target.members.get(k) ?? []), ...s]));
        this.pending.set(`${minute}|${appId}`, target);
      }
      throw err;
    }
  }

  /** Peak connections per flush, and connection-minutes once per minute boundary crossed. */
  private async sampleConnections(): Promise<void> {
    const minute = minuteOf(this.now());
    const crossed = minute !== this.lastSampleMinute;
    this.lastSampleMinute = minute;
    for (const [appId, n] of this.connections.local()) {
      if (n <= 0) continue;
      if (crossed) this.count(appId, Metric.connectionMinutes, n);
      this.peak(appId, Metric.connectionsPeak, await this.connections.cluster(appId).catch(() => n));
    }
  }
}
