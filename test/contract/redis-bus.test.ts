import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';
import { CONTROL_TOPIC, roomTopic } from '../../src/bus/bus.js';
import { RedisBus } from '../../src/bus/redis.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { until } from '../helpers/sockets.js';
import { busContract, settled } from './bus-contract.js';

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
});
afterAll(() => redis?.stop());

/** n nodes of one deployment: same prefix, each with its own connections. */
const nodes = (sharded: boolean) => async (count: number) => {
  const prefix = `t${randomBytes(5).toString('hex')}`;
  return Promise.all(Array.from({ length: count }, () => RedisBus.open(redis.url, { prefix, sharded }) as Promise<Bus>));
};

busContract('redis pub/sub', nodes(false), true);
busContract('redis sharded pub/sub (SPUBLISH/SSUBSCRIBE)', nodes(true), true);

describe.each([false, true])('RedisBus faults (sharded: %s)', (sharded) => {
  let buses: RedisBus[] = [];
  let admin: Redis;
  const room = roomTopic('app', 'r1');
  const deliver = (n: number, size = 0): BusMessage => ({ kind: 'deliver', event: 'chat message', payload: { n, pad: 'x'.repeat(size) } });
  const ns = (seen: { message: BusMessage }[]) => seen.flatMap((s) => (s.message.kind === 'deliver' ? [(s.message.payload as { n: number }).n] : []));

  async function twoNodes() {
    buses = (await nodes(sharded)(2)) as RedisBus[];
    const seen = buses.map((b) => {
      const got: { topic: string; message: BusMessage }[] = [];
      b.onMessage((topic, message) => got.push({ topic, message }));
      b.subscribe(room);
      b.subscribe(CONTROL_TOPIC);
      return got;
    });
    await Promise.all(buses.map(settled));
    return seen;
  }
  beforeAll(async () => {
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
    await admin.connect();
  });
  afterEach(async () => {
    await Promise.all(buses.map((b) => b.close()));
    buses = [];
    await until(() => admin.status === 'ready', 5000);
    await admin.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
  });
  afterAll(() => admin?.disconnect());

  it('re-subscribes when Redis drops a subscriber that fell behind (output-buffer limit)', async () => {
    const seen = await twoNodes();
    const subscriberIds = async () => [...((await admin.client('LIST', 'TYPE', 'pubsub')) as string).matchAll(/\bid=(\d+)/g)].map((m) => m[1]);
    const before = await subscriberIds();
    expect(before).toHaveLength(2);
    await admin.config('SET', 'client-output-buffer-limit', 'pubsub 64kb 64kb 0');
    buses[0]!.publish(room, deliver(1, 256 * 1024)); // over the limit: Redis disconnects both subscribers
    // Both subscriber connections are replaced by new ones (new client ids).
    await until(async () => (await subscriberIds()).filter((id) => before.includes(id)).length === 0, 3000);
    await until(() => buses.every((b) => b.ready()), 5000);
    await Promise.all(buses.map(settled));
    await admin.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
    buses[1]!.publish(room, deliver(2));
    await until(() => seen.every((s) => ns(s).includes(2)), 5000);
  });

  it('survives a Redis restart: not ready meanwhile, re-subscribes, and re-publishes held control events', async () => {
    const seen = await twoNodes();
    await redis.kill('SIGKILL');
    await until(() => buses.every((b) => !b.ready()), 3000);
    // A revocation issued while Redis is away must still reach every node afterwards.
    buses[0]!.publish(CONTROL_TOPIC, { kind: 'tokens-revoked', appId: 'app', userId: 'u1', hashes: ['h'] });
    await redis.restart();
    await until(() => buses.every((b) => b.ready()), 5000);
    await until(() => seen.every((s) => s.some((x) => x.topic === CONTROL_TOPIC)), 5000);
    await Promise.all(buses.map(settled));
    buses[1]!.publish(room, deliver(3));
    await until(() => seen.every((s) => ns(s).includes(3)), 5000);
    // A marker on the control channel from the node that held the revocation: a second
    // re-publish of it would have reached every node before this.
    buses[0]!.publish(CONTROL_TOPIC, { kind: 'apps-changed' });
    await until(() => seen.every((s) => s.some((x) => x.message.kind === 'apps-changed')), 5000);
    for (const s of seen) expect(s.filter((x) => x.message.kind === 'tokens-revoked')).toHaveLength(1);
  });
});
