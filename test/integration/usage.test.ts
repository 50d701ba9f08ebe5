import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, api, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

const FLUSH = { usageFlushMs: 100 };

/** The app's usage totals over the last hour, once `check` holds (meters flush in batches). */
async function totalsWhen(base: string, app: TestApp, check: (t: any) => boolean) {
  let last: any;
  await until(async () => {
    last = (await admin(base, app).get('/admin/usage?granularity=hour')).body.result;
    return check(last.totals);
  }, 10_000).catch(() => undefined);
  return last;
}

/** Generates a known amount of traffic against one or two nodes and returns what it did. */
async function traffic(nodes: TestServer[], app: TestApp, other: TestApp, tokens: Record<string, string>, otherToken: string) {
  const [a, b = a] = nodes;
  const sockets = [
    connect(a!.base, { auth: { clientKey: app.clientKey, token: tokens.alice } }),
    connect(b!.base, { auth: { clientKey: app.clientKey, token: tokens.alice } }),
  ];
  // Listen on all of them before waiting: the second may connect while the first is awaited.
  await Promise.all(sockets.map((s) => once(s, 'connect')));
  const bob = connect(b!.base);
  await once(bob, 'connect');
  await bob.timeout(2000).emitWithAck('auth2', tokens.bob, { 'IM-CLIENT-KEY': app.clientKey });
  sockets.push(bob);
  // Refused handshakes, each attributable to this application.
  for (const token of ['wrong-1', 'wrong-2']) {
    const s = connect(a!.base, { auth: { clientKey: app.clientKey, token } });
    await once(s, 'connect_error');
    s.disconnect();
  }
  const mismatch = connect(b!.base, { auth: { clientKey: app.clientKey, token: otherToken } });
  await once(mismatch, 'connect_error');
  mismatch.disconnect();
  const forged = await new SignJWT({ appId: app.appId, createAt: 1 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('not-the-secret-not-the-secret-xx'));
  const invalid = connect(a!.base, { auth: { clientKey: forged, token: tokens.alice } });
  await once(invalid, 'connect_error');
  invalid.disconnect();
  // Another application's refusals are not this one's.
  const elsewhere = connect(a!.base, { auth: { clientKey: other.clientKey, token: 'nope' } });
  await once(elsewhere, 'connect_error');
  elsewhere.disconnect();
  // Messages: two over REST (one per node), one over a socket.
  const received = sockets.map(() => 0);
  sockets.forEach((s, i) => s.on('chat message', () => received[i]!++));
  await user(a!.base, app, tokens.alice!).post('/rooms/lobby/message', { message: 'rest 1' });
  await user(b!.base, app, tokens.alice!).post('/rooms/lobby/message', { message: 'rest 2' });
  const ack = await bob.timeout(2000).emitWithAck('chat message', { room: 'lobby', message: 'socket 1' });
  expect(ack.RC).toBe(0);
  await until(() => received.every((n) => n === 3));
  return sockets;
}

describe('key usage metering on one node', () => {
  let t: TestServer;
  let app: TestApp;
  let other: TestApp;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer(TRANSPORTS[0]!, { ...FLUSH, metrics: true });
    app = await t.createApp('metered');
    other = await t.createApp('other');
    for (const id of ['alice', 'bob']) tokens[id] = await t.createUser(app, id);
    tokens.other = await t.createUser(other, 'alice');
    await admin(t.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
  });
  afterAll(() => t.close());

  it('counts handshakes, refusals by code, messages by path, deliveries and REST calls exactly', async () => {
    const sockets = await traffic([t], app, other, tokens, tokens.other!);
    const usage = await totalsWhen(t.base, app, (x) => x.deliveries === 9 && x.peakConnections === 3);
    const totals = usage.totals;
    expect(totals).toMatchObject({
      handshakesAccepted: 3,
      handshakesRefused: 4,
      refusedByCode: { INVALID_TOKEN: 2, CLIENT_KEY_MISMATCH: 1, INVALID_CLIENT_KEY: 1 },
      messagesRest: 2,
      messagesSocket: 1,
      deliveries: 9,
      peakConnections: 3,
      restClientKey: 2,
    });
    expect(totals.restApiKey).toBeGreaterThanOrEqual(3); // two users, one room, then these reads
    expect(totals.bytesIn).toBeGreaterThan(0);
    expect(totals.bytesOut).toBeGreaterThan(0);
    expect(usage.activeUsers).toBe(2);
    expect(usage.series.length).toBeGreaterThan(0);
    const otherUsage = await totalsWhen(t.base, other, (x) => x.handshakesRefused === 1);
    expect(otherUsage.totals.refusedByCode).toEqual({ INVALID_TOKEN: 1 });

    const stats = (await admin(t.base, app).get('/admin/stats')).body.result;
    expect(stats).toMatchObject({ messageCount: 3, roomCount: 1, totalRoomCount: 1, peakConnectionCount: 3, clientId: app.appId, clientKey: app.clientKey });
    expect(stats.userList.sort()).toEqual(['alice', 'bob']);
    expect(stats.totalMem).toBeGreaterThan(stats.freeMem);
    expect(stats).not.toHaveProperty('apiKey');
    expect((await admin(t.base, app).get('/admin/connection-count')).body.result.count).toBe(3);

    const metrics = await (await fetch(`${t.base}/metrics`)).text();
    expect(metrics).toContain(`roomcast_usage_total{app="${app.appId}",metric="messages.rest"} 2`);
    expect(metrics).toContain(`roomcast_usage_total{app="${app.appId}",metric="deliveries"} 9`);
    expect(metrics).toContain(`roomcast_connections{app="${app.appId}"} 3`);
    for (const s of sockets) s.disconnect();
  });

  it('the usage endpoints need the API key and valid ranges', async () => {
    expect((await user(t.base, app, tokens.alice!).get('/admin/usage')).body.error.code).toBe('API_KEY_REQUIRED');
    expect((await user(t.base, app, tokens.alice!).get('/admin/stats')).body.error.code).toBe('API_KEY_REQUIRED');
    expect((await admin(t.base, app).get('/admin/usage?granularity=week')).body.error.code).toBe('INVALID_INPUT');
    expect((await admin(t.base, app).get('/admin/usage?from=yesterday')).body.error.code).toBe('INVALID_INPUT');
    expect((await admin(t.base, app).get(`/admin/usage?from=0&to=${Date.now()}`)).body.error.code).toBe('INVALID_INPUT');
  });

  it('an origin allow-list is enforced on REST and at socket upgrade, metered and flagged', async () => {
    const own = await t.createApp('web');
    const tok = await t.createUser(own, 'wendy');
    const settings = await admin(t.base, own).put('/admin/settings', { allowedOrigins: ['https://good.example'] });
    expect(settings.body.result.allowedOrigins).toEqual(['https://good.example']);
    expect((await admin(t.base, own).put('/admin/settings', { allowedOrigins: ['not an origin'] })).body.error.code).toBe('INVALID_INPUT');
    const creds = { 'IM-CLIENT-KEY': own.clientKey, 'IM-Authorization': tok };
    expect((await api(t.base, { ...creds, origin: 'https://good.example' }).get('/me')).status).toBe(200);
    const bad = await api(t.base, { ...creds, origin: 'https://evil.example' }).get('/me');
    expect({ status: bad.status, code: bad.body.error.code }).toEqual({ status: 403, code: 'ORIGIN_NOT_ALLOWED' });
    expect((await api(t.base, creds).get('/me')).status).toBe(200); // no Origin: not a browser
    const s = connect(t.base, { extraHeaders: { ...creds, origin: 'https://evil.example' } });
    await once(s, 'connect_error');
    s.disconnect();
    const usage = await totalsWhen(t.base, own, (x) => x.originRefused === 2);
    expect(usage.totals.originRefused).toBe(2);
    // The alert names its subject: the refused origin.
    expect(usage.alerts).toContainEqual(
      expect.objectContaining({ type: 'foreign-origins', count: 2, origins: ['https://evil.example'], message: '2 requests from https://evil.example outside the allowed origins' }),
    );
  });

  it('flags a burst of refused handshakes', async () => {
    const own = await t.createApp('burst');
    for (let i = 0; i < 25; i++) {
      const s = connect(t.base, { auth: { clientKey: own.clientKey, token: `bad-${i}` } });
      await once(s, 'connect_error');
      s.disconnect();
    }
    const usage = await totalsWhen(t.base, own, (x) => x.handshakesRefused === 25);
    expect(usage.alerts).toContainEqual(
      expect.objectContaining({ type: 'refused-handshakes-burst', count: 25, codes: { INVALID_TOKEN: 25 }, message: '25 refused handshakes in one minute (INVALID_TOKEN ×25)' }),
    );
  });

  it('/metrics is off unless enabled', async () => {
    const plain = await startTestServer('node');
    try {
      expect((await fetch(`${plain.base}/metrics`)).status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});

describe('key usage metering across two nodes through Redis', () => {
  let redis: RedisProcess;
  const nodes: TestServer[] = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    const shared = { ...FLUSH, redisUrl: redis.url, redisPrefix: 'usage', databaseUrl: SHARED_DATABASE_URL, databaseSchema: freshSchema() };
    nodes.push(await startTestServer(TRANSPORTS[0]!, { ...shared, nodeId: 'n1' }), await startTestServer('node', { ...shared, nodeId: 'n2' }));
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await redis?.stop();
  });

  it('sums every node: either node answers the same exact figures', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const app = await a.createApp('clustered');
    const other = await a.createApp('other');
    const tokens: Record<string, string> = {};
    for (const id of ['alice', 'bob']) tokens[id] = await a.createUser(app, id);
    const otherToken = await a.createUser(other, 'alice');
    await admin(a.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
    const sockets = await traffic(nodes, app, other, tokens, otherToken);
    const expected = {
      handshakesAccepted: 3,
      refusedByCode: { INVALID_TOKEN: 2, CLIENT_KEY_MISMATCH: 1, INVALID_CLIENT_KEY: 1 },
      messagesRest: 2,
      messagesSocket: 1,
      deliveries: 9,
      restClientKey: 2,
      peakConnections: 3,
    };
    for (const node of [a, b]) {
      const usage = await totalsWhen(node.base, app, (x) => x.deliveries === 9 && x.peakConnections === 3 && x.handshakesRefused === 4);
      expect(usage.totals).toMatchObject(expected);
    }
    const stats = (await admin(b.base, app).get('/admin/stats')).body.result;
    expect(stats).toMatchObject({ messageCount: 3, totalRoomCount: 1, peakConnectionCount: 3 });
    for (const s of sockets) s.disconnect();
  });
});
