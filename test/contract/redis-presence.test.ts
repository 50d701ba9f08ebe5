import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalPresence, type Presence } from '../../src/presence/presence.js';
import { RedisPresence } from '../../src/cluster/redis-presence.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { until } from '../helpers/sockets.js';

describe('cluster-wide connection counts', () => {
  let redis: RedisProcess;
  let admin: Redis;
  let open: RedisPresence[] = [];
  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
    await admin.connect();
  });
  afterEach(async () => {
    await Promise.all(open.map((p) => p.close()));
    open = [];
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  const cluster = async (count: number, ttlMs = 1_000) => {
    const prefix = `t${randomBytes(5).toString('hex')}`;
    const nodes = await Promise.all(Array.from({ length: count }, (_, i) => RedisPresence.open(redis.url, { nodeId: `n${i}`, prefix, ttlMs })));
    open.push(...nodes);
    return nodes;
  };
  const counts = async (p: Presence) => [await p.connectionCount('app'), await p.userConnectionCount('app', 'alice'), await p.userConnectionCount('app', 'bob')];

  it('the embedded presence counts this node only', async () => {
    const p = new LocalPresence('solo');
    p.onSocketBound('app', 'alice');
    p.onSocketBound('app', 'alice');
    p.onSocketClosed('app', 'alice');
    expect(await counts(p)).toEqual([1, 1, 0]);
    expect(await p.isUserConnected('app', 'bob')).toBe(false);
    expect(await p.usersConnected('app', ['bob', 'alice', 'carol'])).toEqual([false, true, false]);
  });

  it('sums every node, per application and per user, read from any node', async () => {
    const [a, b, c] = await cluster(3);
    a!.onSocketBound('app', 'alice');
    b!.onSocketBound('app', 'alice');
    b!.onSocketBound('app', 'bob');
    c!.onSocketBound('other', 'alice');
    expect(await counts(a!)).toEqual([1, 1, 0]); // a's own change is seen at once
    await until(async () => (await counts(c!)).join() === '3,2,1');
    b!.onSocketClosed('app', 'alice');
    await until(async () => (await counts(a!)).join() === '2,1,1');
    expect(await c!.connectionCount('other')).toBe(1);
    expect(await a!.isUserConnected('app', 'bob')).toBe(true);
    // Many at once (member lists), in the order asked: another node's socket, none, this node's own.
    a!.onSocketBound('app', 'dave');
    expect(await a!.usersConnected('app', ['bob', 'carol', 'dave'])).toEqual([true, false, true]);
    expect(await a!.usersConnected('app', [])).toEqual([]);
    expect(b!.localConnectionCount('app')).toBe(1);
  });

  it("drops a crashed node's sockets after the TTL, and a closed node's at once", async () => {
    const [a, b, c] = await cluster(3, 600);
    a!.onSocketBound('app', 'alice');
    b!.onSocketBound('app', 'alice');
    c!.onSocketBound('app', 'bob');
    await until(async () => (await a!.connectionCount('app')) === 3);
    b!.simulateCrash();
    await until(async () => (await a!.connectionCount('app')) === 2, 3000);
    expect(await a!.userConnectionCount('app', 'alice')).toBe(1);
    await c!.close();
    expect(await a!.connectionCount('app')).toBe(1);
    expect(await a!.userConnectionCount('app', 'bob')).toBe(0);
  });

  it('restates its counts when Redis lost them', async () => {
    const [a, b] = await cluster(2, 5_000);
    a!.onSocketBound('app', 'alice');
    b!.onSocketBound('app', 'bob');
    await until(async () => (await a!.connectionCount('app')) === 2);
    await admin.flushall();
    await until(async () => (await a!.connectionCount('app')) === 2, 4000); // next heartbeats send snapshots
    expect(await counts(b!)).toEqual([2, 1, 1]);
  });
});
