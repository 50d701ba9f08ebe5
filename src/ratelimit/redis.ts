import { closeClient, connectClient, createRedisClient, guarded, LuaScript, type RedisClient } from '../cluster/redis-client.js';
import type { Logger } from '../observability/logger.js';
import { MemoryRateLimiter, type RateDecision, type RateLimiter } from './limiter.js';

/** URI encoding plus `*`: no `{}`, `:` or glob characters in a key part. */
function encodeKeyPart(value: string): string {
  return encodeURIComponent(value).replace(/\*/g, '%2A');
}

// KEYS: the window's counter   ARGV: window length (ms). The first hit sets the expiry.
const HIT = new LuaScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`);

/**
 * Cluster-wide counts: one counter per (application, subject, window) —
 * `<prefix>:app:{<app>}:rl:<subject>:<window>` — incremented by every node, expiring with its
 * window. One script call (INCR, PEXPIRE on the first) per request. While Redis is away, each
 * node counts on its own (a REST request never fails because the counters are unreachable:
 * the database, not Redis, is what a request needs).
 */
export class RedisRateLimiter implements RateLimiter {
  private local = new MemoryRateLimiter();

  private constructor(
    private client: RedisClient,
    private prefix: string,
  ) {}

  static async open(url: string, o: { prefix: string; nodeId: string; log?: Logger }): Promise<RedisRateLimiter> {
    const client = createRedisClient(url, { name: `roomcast:${o.nodeId}:ratelimit`, log: o.log });
    try {
      await connectClient(client, url, 10_000);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return new RedisRateLimiter(client, o.prefix);
  }

  async hit(appId: string, subject: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const key = `${this.prefix}:app:{${encodeKeyPart(appId)}}:rl:${encodeKeyPart(subject)}:${windowMs}:${window}`;
    let count: number;
    try {
      count = Number(await guarded(this.client, () => HIT.run(this.client, [key], [windowMs])));
    } catch {
      return this.local.hit(appId, subject, limit, windowMs);
    }
    return { allowed: count <= limit, retryAfterMs: (window + 1) * windowMs - now };
  }

  async close(): Promise<void> {
    await this.local.close();
    await closeClient(this.client);
  }
}
