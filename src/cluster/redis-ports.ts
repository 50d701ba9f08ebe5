import { RedisBus } from '../bus/redis.js';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { RedisPresence } from './redis-presence.js';
import { describeRedisUrl } from './redis-client.js';

/** Bus and presence on the Redis named by ROOMCAST_REDIS_URL (cluster mode; data lives in PostgreSQL). */
export async function openRedisPorts(config: Config, log: Logger) {
  const url = config.redisUrl;
  const name = `roomcast:${config.nodeId}`;
  const opened: { close(): Promise<void> }[] = [];
  try {
    const bus = await RedisBus.open(url, { prefix: config.redisPrefix, sharded: config.redisShardedPubsub, name, log });
    opened.push(bus);
    const presence = await RedisPresence.open(url, { prefix: config.redisPrefix, nodeId: config.nodeId, ttlMs: config.presenceTtlMs, log });
    log.info({ redis: describeRedisUrl(url), node: config.nodeId, shardedPubsub: config.redisShardedPubsub }, 'cluster mode: bus and presence on redis');
    return { bus, presence };
  } catch (err) {
    await Promise.all(opened.map((p) => p.close().catch(() => {})));
    throw err;
  }
}
