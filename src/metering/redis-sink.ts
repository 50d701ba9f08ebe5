import { closeClient, connectClient, createRedisClient, guarded, LuaScript, type RedisClient } from '../cluster/redis-client.js';
import type { Logger } from '../observability/logger.js';
import { Members } from './meter.js';
import type { Minute, UsageBucket, UsageDelta, UsageSink } from './sink.js';

/** URI encoding plus `*`: an app id in a key has no `{}`, `:` or glob metacharacters. */
function encodeKeyPart(value: string): string {
  return encodeURIComponent(value).replace(/\*/g, '%2A');
}

/** Every distinct-member set the meter keeps (read back per bucket). */
const MEMBER_SETS: readonly string[] = Object.values(Members);

// KEYS: the bucket hash   ARGV: ttl seconds, then (field, value) pairs: keep the larger value.
const HMAX = new LuaScript(`
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`);

/**
 * Usage buckets summed across every node in Redis. One hash per (application, minute) —
 * `<prefix>:app:{<app>}:usage:<minute>` — plus one set per distinct-member metric, all with
 * the retention as TTL; the application's hash tag keeps them in its slot.
 */
export class RedisUsageSink implements UsageSink {
  private constructor(
    private client: RedisClient,
    private prefix: string,
    private retentionSeconds: number,
  ) {}

  static async open(url: string, o: { prefix: string; nodeId: string; retentionMinutes: number; log?: Logger }): Promise<RedisUsageSink> {
    const client = createRedisClient(url, { name: `roomcast:${o.nodeId}:usage`, log: o.log });
    try {
      await connectClient(client, url, 10_000);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return new RedisUsageSink(client, o.prefix, o.retentionMinutes * 60);
  }

  private key(appId: string, minute: Minute): string {
    return `${this.prefix}:app:{${encodeKeyPart(appId)}}:usage:${minute}`;
  }

  async write(deltas: UsageDelta[]): Promise<void> {
    await guarded(this.client, async () => {
      const pipeline = this.client.pipeline();
      const maxima: [string, (string | number)[]][] = [];
      for (const d of deltas) {
        const key = this.key(d.appId, d.minute);
        for (const [field, n] of Object.entries(d.add)) pipeline.hincrby(key, field, n);
        pipeline.expire(key, this.retentionSeconds);
        const max = Object.entries(d.max).flat();
        if (max.length > 0) maxima.push([key, max]);
        for (const [set, ids] of Object.entries(d.members)) {
          if (ids.length === 0) continue;
          pipeline.sadd(`${key}:m:${set}`, ...ids);
          pipeline.expire(`${key}:m:${set}`, this.retentionSeconds);
        }
      }
      await pipeline.exec();
      for (const [key, max] of maxima) await HMAX.run(this.client, [key], [this.retentionSeconds, ...max]);
    });
  }

  async read(appId: string, from: Minute, to: Minute): Promise<UsageBucket[]> {
    return guarded(this.client, async () => {
      const minutes: Minute[] = [];
      for (let m = from; m <= to; m++) minutes.push(m);
      const pipeline = this.client.pipeline();
      for (const m of minutes) {
        const key = this.key(appId, m);
        pipeline.hgetall(key);
        for (const set of MEMBER_SETS) pipeline.smembers(`${key}:m:${set}`);
      }
      const replies = (await pipeline.exec()) ?? [];
      const stride = 1 + MEMBER_SETS.length;
      const buckets: UsageBucket[] = [];
      minutes.forEach((minute, i) => {
        const hash = (replies[i * stride]?.[1] ?? {}) as Record<string, string>;
        const members = Object.fromEntries(MEMBER_SETS.map((set, j) => [set, (replies[i * stride + 1 + j]?.[1] ?? []) as string[]]));
        if (Object.keys(hash).length === 0 && Object.values(members).every((ids) => ids.length === 0)) return;
        const values = Object.fromEntries(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
        buckets.push({ minute, values, members });
      });
      return buckets;
    });
  }

  async close(): Promise<void> {
    await closeClient(this.client);
  }
}
