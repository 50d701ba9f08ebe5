import type { Minute, UsageBucket, UsageDelta, UsageSink } from './sink.js';

interface Bucket {
  values: Map<string, number>;
  members: Map<string, Set<string>>;
}

/** The single node's usage store; minutes older than the retention are dropped on write. */
export class MemoryUsageSink implements UsageSink {
  private apps = new Map<string, Map<Minute, Bucket>>();

  constructor(private retentionMinutes: number) {}

  async write(deltas: UsageDelta[]): Promise<void> {
    for (const d of deltas) {
      let minutes = this.apps.get(d.appId);
      if (!minutes) this.apps.set(d.appId, (minutes = new Map()));
      let bucket = minutes.get(d.minute);
      if (!bucket) minutes.set(d.minute, (bucket = { values: new Map(), members: new Map() }));
      for (const [k, v] of Object.entries(d.add)) bucket.values.set(k, (bucket.values.get(k) ?? 0) + v);
      for (const [k, v] of Object.entries(d.max)) bucket.values.set(k, Math.max(bucket.values.get(k) ?? 0, v));
      for (const [k, ids] of Object.entries(d.members)) {
        let set = bucket.members.get(k);
        if (!set) bucket.members.set(k, (set = new Set()));
        for (const id of ids) set.add(id);
      }
      const oldest = d.minute - this.retentionMinutes;
      for (const m of minutes.keys()) if (m < oldest) minutes.delete(m);
    }
  }

  async read(appId: string, from: Minute, to: Minute): Promise<UsageBucket[]> {
    const minutes = this.apps.get(appId);
    if (!minutes) return [];
    return [...minutes.entries()]
      .filter(([m]) => m >= from && m <= to)
      .sort(([a], [b]) => a - b)
      .map(([minute, b]) => ({
        minute,
        values: Object.fromEntries(b.values),
        members: Object.fromEntries([...b.members].map(([k, set]) => [k, [...set]])),
      }));
  }

  async close(): Promise<void> {}
}
