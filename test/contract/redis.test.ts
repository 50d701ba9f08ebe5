import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { RedisStore } from '../../src/store/redis.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { storeContract } from './store-contract.js';

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'everysec' });
});
afterAll(() => redis?.stop());

// Each test gets a store with a prefix of its own: a fresh, empty keyspace.
storeContract('redis', () => RedisStore.open(redis.url, { prefix: `t${randomBytes(6).toString('hex')}` }));
