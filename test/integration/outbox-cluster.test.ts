import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { HttpReceiver } from '../helpers/receivers.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { until } from '../helpers/sockets.js';

/**
 * The outbox shared by two nodes on one PostgreSQL (data) and Redis (bus, presence): a failing then recovering receiver gets every
 * event exactly once acknowledged (no node sends an item another holds), and events whose
 * receiver is down while the nodes restart are delivered by the node that comes up after.
 */
describe.each(TRANSPORTS)('outbox on two nodes sharing PostgreSQL and Redis, over %s', (transport) => {
  let redis: RedisProcess;
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const schema = freshSchema();
  const nodes: TestServer[] = [];
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const receiver = new HttpReceiver();
  const fast = { outboxPollMs: 20, outboxRetryBaseMs: 30, outboxRetryMaxMs: 150, outboxMaxAttempts: 50, webhookTimeoutMs: 1000 };
  const node = async (nodeId: string) => {
    const t = await startTestServer(transport, { databaseUrl: SHARED_DATABASE_URL, databaseSchema: schema, redisUrl: redis.url, redisPrefix: prefix, nodeId, ...fast });
    nodes.push(t);
    return t;
  };
  const messageEvents = (roomId: string) => receiver.received.filter((r) => r.body?.roomID === roomId && r.body.event === 'MESSAGE');

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    await receiver.start();
    const a = await node('a');
    await node('b');
    app = await a.createApp('cluster-hooks');
    for (const id of ['alice', 'bob']) tokens[id] = await a.createUser(app, id);
    receiver.secret = (await admin(a.base, app).get('/admin/delivery')).body.result.webhookSecret;
  });
  afterAll(async () => {
    for (const t of nodes) await t.close().catch(() => undefined);
    await receiver.stop();
    await redis?.stop();
  });

  it('a receiver failing then recovering gets every event, and none twice, from two nodes', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    await admin(a.base, app).post('/rooms', { _id: 'shared', members: ['alice', 'bob'], webhook: receiver.url });
    let failures = 0;
    receiver.answer = () => (failures++ < 15 ? { status: 503 } : { status: 200, body: {} });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const via = i % 2 === 0 ? a : b;
      const sent = await user(via.base, app, tokens[i % 2 === 0 ? 'alice' : 'bob']!).post('/rooms/shared/message', { message: `n${i}` });
      expect(sent.status).toBe(200);
      ids.push(sent.body.result._id);
    }
    const deliveries = async () => (await admin(b.base, app).get('/admin/deliveries?limit=500')).body.result.data as any[];
    await until(async () => {
      const d = (await deliveries()).filter((x) => x.roomId === 'shared');
      return d.length === 20 && d.every((x) => x.status === 'delivered');
    }, 20_000);
    // Every request the receiver acknowledged (after its 15 refusals), by message: each once.
    const acked = messageEvents('shared').slice(15).map((r) => r.body.data._id as string);
    expect(acked.sort()).toEqual([...ids].sort());
    expect(messageEvents('shared').every((r) => r.signed)).toBe(true);
    // And the delivery ids never repeat among acknowledged requests.
    const deliveryIds = messageEvents('shared').slice(15).map((r) => r.headers['x-roomcast-delivery']);
    expect(new Set(deliveryIds).size).toBe(20);
  });

  it('events sent while the receiver is down survive a restart of every node and are delivered after', async () => {
    const [a] = nodes as [TestServer];
    await admin(a.base, app).post('/rooms', { _id: 'restart', members: ['alice', 'bob'], webhook: receiver.url });
    receiver.answer = () => ({ status: 200, body: {} });
    const port = receiver.port;
    await receiver.stop();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await user(a.base, app, tokens.alice!).post('/rooms/restart/message', { message: `r${i}` })).body.result._id);
    // Both nodes try and fail (connection refused) before they go down.
    await until(async () => {
      const d = ((await admin(a.base, app).get('/admin/deliveries?limit=500')).body.result.data as any[]).filter((x) => x.roomId === 'restart');
      return d.length === 5 && d.every((x) => x.attempts >= 1 && x.status === 'pending');
    });
    // server.close(), not the helper's close(): that would drop the shared schema with the node.
    for (const t of nodes.splice(0)) await t.server.close();
    await receiver.start(port);
    const c = await node('c');
    await until(() => new Set(messageEvents('restart').map((r) => r.body.data._id)).size === 5, 15_000);
    expect([...new Set(messageEvents('restart').map((r) => r.body.data._id))].sort()).toEqual([...ids].sort());
    await until(async () => ((await admin(c.base, app).get('/admin/deliveries?limit=500')).body.result.data as any[]).filter((x) => x.roomId === 'restart').every((x) => x.status === 'delivered'));
    expect(messageEvents('restart')).toHaveLength(5);
  });
});
