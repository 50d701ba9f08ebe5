import { Members, Metric } from './meter.js';
import type { UsageBucket, UsageSink } from './sink.js';

export type Granularity = 'minute' | 'hour' | 'day';
const STEP: Record<Granularity, number> = { minute: 1, hour: 60, day: 1440 };

export interface UsagePoint {
  t: string;
  tMS: number;
  handshakesAccepted: number;
  handshakesRefused: number;
  refusedByCode: Record<string, number>;
  peakConnections: number;
  connectionMinutes: number;
  messagesRest: number;
  messagesSocket: number;
  deliveries: number;
  bytesIn: number;
  bytesOut: number;
  restApiKey: number;
  restClientKey: number;
  originRefused: number;
}

export interface UsageAlert {
  type: 'refused-handshakes-burst' | 'foreign-origins';
  at: string;
  atMS: number;
  count: number;
  /** The subject: refusals by error code (burst), or the refused origins (foreign-origins). */
  codes?: Record<string, number>;
  origins?: string[];
  message: string;
}

const REFUSED_PREFIX = `${Metric.handshakesRefused}.`;

function emptyPoint(ms: number): UsagePoint {
  return {
    t: new Date(ms).toISOString(), tMS: ms, handshakesAccepted: 0, handshakesRefused: 0, refusedByCode: {},
    peakConnections: 0, connectionMinutes: 0, messagesRest: 0, messagesSocket: 0, deliveries: 0,
    bytesIn: 0, bytesOut: 0, restApiKey: 0, restClientKey: 0, originRefused: 0,
  };
}

function addBucket(p: UsagePoint, b: UsageBucket): void {
  const v = b.values;
  const n = (k: string) => v[k] ?? 0;
  p.handshakesAccepted += n(Metric.handshakesAccepted);
  for (const [k, count] of Object.entries(v)) {
    if (!k.startsWith(REFUSED_PREFIX)) continue;
    const code = k.slice(REFUSED_PREFIX.length);
    p.refusedByCode[code] = (p.refusedByCode[code] ?? 0) + count;
    p.handshakesRefused += count;
  }
  p.peakConnections = Math.max(p.peakConnections, n(Metric.connectionsPeak));
  p.connectionMinutes += n(Metric.connectionMinutes);
  p.messagesRest += n(Metric.messagesRest);
  p.messagesSocket += n(Metric.messagesSocket);
  p.deliveries += n(Metric.deliveries);
  p.bytesIn += n(Metric.bytesIn);
  p.bytesOut += n(Metric.bytesOut);
  p.restApiKey += n(Metric.restApiKey);
  p.restClientKey += n(Metric.restClientKey);
  p.originRefused += n(Metric.originRefused);
}

/** The usage time series of one application, with totals and flags for unusual patterns. */
export async function usageReport(sink: UsageSink, appId: string, fromMs: number, toMs: number, granularity: Granularity) {
  const step = STEP[granularity];
  const from = Math.floor(fromMs / 60_000);
  const to = Math.floor(toMs / 60_000);
  const buckets = await sink.read(appId, from, to);
  const points = new Map<number, UsagePoint>();
  const total = emptyPoint(from * 60_000);
  for (const b of buckets) {
    const slot = Math.floor(b.minute / step) * step;
    let p = points.get(slot);
    if (!p) points.set(slot, (p = emptyPoint(slot * 60_000)));
    addBucket(p, b);
    addBucket(total, b);
  }
  const series: UsagePoint[] = [];
  for (let slot = Math.floor(from / step) * step; slot <= to; slot += step) series.push(points.get(slot) ?? emptyPoint(slot * 60_000));
  return {
    from: new Date(from * 60_000).toISOString(),
    to: new Date(to * 60_000).toISOString(),
    granularity,
    series,
    totals: { ...total, t: undefined, tMS: undefined },
    alerts: alerts(buckets, to - from + 1),
    activeUsers: distinct(buckets, Members.activeUsers),
    activeRooms: distinct(buckets, Members.activeRooms),
  };
}

export function distinct(buckets: UsageBucket[], set: string): string[] {
  return [...new Set(buckets.flatMap((b) => b.members[set] ?? []))];
}

/**
 * Unusual patterns, judged per minute: refused handshakes at least 20 and five times the
 * median of the window's other minutes (quiet minutes count as zero) — a key tried with bad
 * tokens, or a reconnect storm — and any traffic refused for coming from an origin outside
 * the application's allow-list.
 */
function alerts(buckets: UsageBucket[], windowMinutes: number): UsageAlert[] {
  const origins = new Map<number, string[]>();
  const minutes = buckets.map((b) => {
    const p = emptyPoint(b.minute * 60_000);
    addBucket(p, b);
    origins.set(p.tMS, b.members[Members.refusedOrigins] ?? []);
    return p;
  });
  const medianWithout = (p: UsagePoint): number => {
    const others = minutes.filter((m) => m !== p).map((m) => m.handshakesRefused);
    while (others.length < windowMinutes - 1) others.push(0);
    others.sort((a, b) => a - b);
    return others.length ? others[Math.floor(others.length / 2)]! : 0;
  };
  const out: UsageAlert[] = [];
  for (const p of minutes) {
    if (p.handshakesRefused >= 20 && p.handshakesRefused >= 5 * Math.max(1, medianWithout(p))) {
      const codes = Object.entries(p.refusedByCode).sort((a, b) => b[1] - a[1]);
      const detail = codes.map(([code, n]) => `${code} ×${n}`).join(', ');
      out.push({
        type: 'refused-handshakes-burst', at: p.t, atMS: p.tMS, count: p.handshakesRefused, codes: p.refusedByCode,
        message: `${p.handshakesRefused} refused handshakes in one minute (${detail})`,
      });
    }
    if (p.originRefused > 0) {
      const from = origins.get(p.tMS) ?? [];
      const requests = p.originRefused === 1 ? '1 request' : `${p.originRefused} requests`;
      out.push({
        type: 'foreign-origins', at: p.t, atMS: p.tMS, count: p.originRefused, origins: from,
        message: `${requests} from ${from.length ? from.join(', ') : 'an origin'} outside the allowed origins`,
      });
    }
  }
  return out;
}
