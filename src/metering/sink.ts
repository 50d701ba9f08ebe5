/**
 * Where per-minute usage buckets are summed. Each node flushes its in-memory deltas here in
 * batches; the memory sink serves one node, the Redis sink sums every node of a cluster.
 */

/** Minute buckets are keyed by the epoch minute (Math.floor(ms / 60000)). */
export type Minute = number;

export interface UsageDelta {
  appId: string;
  minute: Minute;
  /** Counters to add. */
  add: Record<string, number>;
  /** Gauges whose bucket keeps the largest value seen (peak connections). */
  max: Record<string, number>;
  /** Distinct-member sets (active users, active rooms) to union into the bucket. */
  members: Record<string, string[]>;
}

export interface UsageBucket {
  minute: Minute;
  values: Record<string, number>;
  members: Record<string, string[]>;
}

export interface UsageSink {
  write(deltas: UsageDelta[]): Promise<void>;
  /** Buckets of one application between two minutes (inclusive), oldest first; empty minutes omitted. */
  read(appId: string, from: Minute, to: Minute): Promise<UsageBucket[]>;
  close(): Promise<void>;
}
