import { RedisBus } from '../bus/redis.js';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { RedisStore } from '../store/redis.js';
import { RedisPresence } from './redis-presence.js';
import { describeRedisUrl } from './redis-client.js';

/** Store, bus and presence on the Redis named by ROOMCAST_REDIS_URL (cluster mode). */
export async function openRedisPorts(config: Config, log: Logger) {
  const url = config.redisUrl;
  const name = `roomcast:${config.nodeId}`;
  const opened: { close(): Promise<void> }[] = [];
  try {
    const store = await RedisStore.open(url, { prefix: config.redisPrefix, name: `${name}:store`, log });
    opened.push(store);
    const bus = await RedisBus.open(url, { prefix: config.redisPrefix, sharded: config.redisShardedPubsub, name, log });
    opened.push(bus);
    const presence = await RedisPresence.open(url, { prefix: config.redisPrefix, nodeId: config.nodeId, ttlMs: config.presenceTtlMs, log });
    log.info({ redis: describeRedisUrl(url), node: config.nodeId, shardedPubsub: config.redisShardedPubsub }, 'cluster mode: store and bus on redis');
    return { store, bus, presence };
  } catch (err) {
    await Promise.all(opened.map((p) => p.close().catch(() => {})));
    throw err;
  }
}
