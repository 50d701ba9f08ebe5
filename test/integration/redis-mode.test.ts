import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, drainSocket, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { collect, connect, once, until } from '../helpers/sockets.js';

/**
 * One node in cluster mode (ROOMCAST_DATABASE_URL + ROOMCAST_REDIS_URL): REST, sockets,
 * monitoring, and Redis faults. Data is in PostgreSQL (a schema of this suite's own on the
 * shared server); Redis carries bus and presence.
 */
describe.each(TRANSPORTS)('a node on PostgreSQL + Redis, over %s', (transport) => {
  let redis: RedisProcess;
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    t = await startTestServer(transport, {
      redisUrl: redis.url,
      redisPrefix: `t${randomBytes(4).toString('hex')}`,
      nodeId: 'solo',
      databaseUrl: SHARED_DATABASE_URL,
      databaseSchema: freshSchema(),
    });
    app = await t.createApp('main');
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob'] });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  const socketOf = async (who: string) => {
    const s = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] } });
    open.push(s);
    await once(s, 'connect');
    return s;
  };
  const send = (from: string, message: string) => user(t.base, app, tokens[from]!).post('/rooms/lobby/message', { message });
  const ready = async () => (await fetch(`${t.base}/readyz`)).status;

  it('a start that fails after opening its Redis connections closes them all', async () => {
    const { Redis } = await import('ioredis');
    const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await probe.connect();
    const clients = async () => String(await probe.call('CLIENT', 'LIST')).trim().split('\n').length;
    const before = await clients();
    // The port is taken: listening fails after store, bus, presence and usage sink are open.
    const taken = t.server.port;
    const failed = await startTestServer(transport, {
      redisUrl: redis.url,
      redisPrefix: `t${randomBytes(4).toString('hex')}`,
      port: taken,
      databaseUrl: SHARED_DATABASE_URL,
      databaseSchema: freshSchema(),
    }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    await until(async () => (await clients()) === before);
    probe.disconnect();
  });

  it('stores, delivers once, and counts connections cluster-wide', async () => {
    const s = await socketOf('alice');
    const got = collect<{ message: string }>(s, 'chat message');
    const sent = await send('bob', 'hello over redis');
    expect(sent.status).toBe(200);
    await until(() => got.length === 1);
    await drainSocket(t.base, app, s, 'alice'); // a duplicate would have come before this marker
    expect(got.map((m) => m.message)).toEqual(['hello over redis']);
    const count = await admin(t.base, app).get('/admin/connection-count');
    expect(count.body.result).toEqual({ count: 1, scope: 'cluster' });
    const mine = await admin(t.base, app).get('/admin/connection-count?client=alice&scope=node');
    expect(mine.body.result).toEqual({ count: 1, scope: 'node', node: 'solo', client: 'alice' });
    const refused = await user(t.base, app, tokens.alice!).get('/admin/connection-count');
    expect(refused.status).toBe(403);
    const history = await user(t.base, app, tokens.alice!).get('/rooms/lobby/messages/v3?limit=10');
    expect(history.body.result.data.map((m: { message: string }) => m.message)).toContain('hello over redis');
  });

  it('without Redis: keeps its sockets and stores messages, is not ready; live delivery resumes when it returns', async () => {
    const s = await socketOf('alice');
    const got = collect<{ message: string }>(s, 'chat message');
    expect(await ready()).toBe(200);
    await redis.kill('SIGKILL');
    await until(async () => (await ready()) === 503, 3000);
    expect(await (await fetch(`${t.base}/readyz`)).json()).toEqual({ status: 'not ready' });
    // The data is in PostgreSQL: the message is stored and acknowledged; only its live fan-out is lost.
    const during = await send('bob', 'while redis is down');
    expect(during.status).toBe(200);
    // A member list still answers: presence cannot be read, so members are shown offline.
    const room = await user(t.base, app, tokens.bob!).get('/rooms/lobby');
    expect(room.status).toBe(200);
    expect(room.body.result.members.length).toBeGreaterThan(0);
    expect(room.body.result.members.map((m: { isSocketConnected: boolean }) => m.isSocketConnected)).not.toContain(true);
    // Still connected: the socket answers while Redis is down.
    expect(await s.timeout(2000).emitWithAck('conf', {})).toMatchObject({ RC: 0 });
    await redis.restart();
    await until(async () => (await ready()) === 200, 5000);
    // The bus re-subscribes on reconnect: send until one arrives (no fixed wait).
    await until(async () => {
      expect((await send('bob', 'after the restart')).status).toBe(200);
      return got.length > 0;
    }, 5000);
    await drainSocket(t.base, app, s, 'alice');
    expect(new Set(got.map((m) => m.message))).toEqual(new Set(['after the restart']));
    const ids = got.map((m) => (m as { _id?: string })._id);
    expect(new Set(ids).size, 'each message delivered once').toBe(ids.length);
    expect(s.connected).toBe(true);
    const history = await user(t.base, app, tokens.alice!).get(`/rooms/lobby/messages/v3?limit=${got.length + 1}`);
    expect(history.body.result.data.map((m: { message: string }) => m.message)).toEqual([...got.map(() => 'after the restart'), 'while redis is down']);
  });
});
