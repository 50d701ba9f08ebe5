import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.js';
import { RedisBus } from '../../src/bus/redis.js';
import { RedisPresence } from '../../src/cluster/redis-presence.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { until } from '../helpers/sockets.js';
import { busContract } from './bus-contract.js';

/**
 * The bus contract and presence through ioredis' Cluster client against a Redis Cluster (one
 * node that owns every slot): checks the redis-cluster:// wiring and that presence's scripts
 * keep their keys in one slot.
 */
let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis({ cluster: true, appendonly: false });
});
afterAll(() => redis?.stop());

const prefix = () => `t${randomBytes(5).toString('hex')}`;

busContract('redis cluster, sharded pub/sub', async (count) => {
  const p = prefix();
  return Promise.all(Array.from({ length: count }, () => RedisBus.open(redis.url, { prefix: p, sharded: true }) as Promise<Bus>));
}, true);

describe('presence on a redis cluster', () => {
  it('counts across nodes', async () => {
    const p = prefix();
    const [a, b] = await Promise.all([0, 1].map((i) => RedisPresence.open(redis.url, { nodeId: `n${i}`, prefix: p, ttlMs: 2000 })));
    try {
      a!.onSocketBound('app', 'alice');
      b!.onSocketBound('app', 'bob');
      await until(async () => (await a!.connectionCount('app')) === 2);
      expect(await b!.userConnectionCount('app', 'alice')).toBe(1);
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  });
});
