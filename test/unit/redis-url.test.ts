import { describe, expect, it } from 'vitest';
import { describeRedisUrl, parseRedisUrl } from '../../src/cluster/redis-client.js';
import { loadConfig } from '../../src/config.js';

describe('ROOMCAST_REDIS_URL', () => {
  it('reads the standalone, Sentinel and Cluster forms', () => {
    expect(parseRedisUrl('redis://:pw@10.0.0.1:6380/2')).toEqual({ kind: 'standalone', url: 'redis://:pw@10.0.0.1:6380/2' });
    expect(parseRedisUrl('redis-sentinel://user:p%40ss@s1:26379,s2/mymaster/3')).toEqual({
      kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', db: 3, username: 'user', password: 'p@ss',
    });
    expect(parseRedisUrl('redis-cluster://r1:7000,r2:7001,[::1]:7002')).toEqual({
      kind: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }, { host: '::1', port: 7002 }],
    });
    expect(() => parseRedisUrl('redis-sentinel://s1:26379')).toThrow(/master name/);
    expect(() => parseRedisUrl('redis-cluster://r1:notaport')).toThrow(/bad host:port/);
  });

  it('is never logged with its password', () => {
    expect(describeRedisUrl('redis://user:secret@host:6379/0')).toBe('redis://host:6379/0');
  });

  it('switches cluster mode on; other schemes are refused naming the setting', () => {
    expect(loadConfig({}).redisUrl).toBe('');
    expect(loadConfig({ ROOMCAST_REDIS_URL: 'redis://127.0.0.1:6379' })).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379', redisPrefix: 'rc', redisShardedPubsub: false });
    expect(() => loadConfig({ ROOMCAST_REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/ROOMCAST_REDIS_URL/);
    expect(() => loadConfig({ ROOMCAST_REDIS_PREFIX: 'a b' })).toThrow(/ROOMCAST_REDIS_PREFIX/);
  });
});
