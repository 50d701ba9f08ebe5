import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { makePng } from '../helpers/png.js';
import { admin, api, OPERATOR_SECRET, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, until } from '../helpers/sockets.js';

/** Every line the server logs, parsed. */
function capture() {
  const text: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      text.push(chunk.toString());
      done();
    },
  });
  const lines = () => text.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  return { stream, text: () => text.join(''), lines, find: (msg: string) => lines().filter((l) => l.msg === msg) };
}

/** A real (in-memory SQLite) store whose user listing fails like a broken disk: the one way to provoke a 500 here. */
async function brokenListing(): Promise<Store> {
  const { store } = await openStore(loadConfig({}, { databasePath: ':memory:' }), createLogger('silent'));
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'listUsers') return async () => Promise.reject(new Error('disk on fire'));
      const value: unknown = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.each(TRANSPORTS)('logs over %s', (transport) => {
  const log = capture();
  let t: TestServer;
  let app: TestApp;
  /** Every credential the session uses: none may appear in the output. */
  const secrets: string[] = [OPERATOR_SECRET];
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer(
      transport,
      { logLevel: 'trace', filesDir: mkdtempSync(path.join(tmpdir(), 'roomcast-logs-')), authTimeoutMs: 300 },
      { log: createLogger('trace', log.stream), store: await brokenListing() },
    );
    app = await t.createApp('logged');
    secrets.push(app.apiKey, app.clientKey);
    for (const id of ['alice', 'bob']) {
      tokens[id] = await t.createUser(app, id);
      secrets.push(tokens[id]!);
    }
    // An operator-assigned token (IMKIT's PUT /admin/clients/:id/token body: token + expirationDate).
    const assigned = `carol-assigned-${Math.random().toString(36).slice(2)}`;
    await t.createUser(app, 'carol');
    const put = await admin(t.base, app).put('/admin/clients/carol/token', { token: assigned, expirationDate: Date.now() + 3_600_000 });
    expect(put.status).toBe(200);
    tokens.carol = assigned;
    secrets.push(assigned);
    expect((await admin(t.base, app).post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob', 'carol'] })).status).toBe(200);
  });
  afterAll(() => t?.close());

  it('logs REST requests at debug with the route pattern and a request id it echoes; 5xx at error with the cause', async () => {
    const res = await fetch(`${t.base}/rooms/lobby/message`, {
      method: 'POST',
      headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice!, 'content-type': 'application/json', 'x-request-id': 'trace-abc.1' },
      body: JSON.stringify({ message: 'hello' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-abc.1');
    const generated = await fetch(`${t.base}/healthz`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[\w-]{8,}$/);
    const bogus = await fetch(`${t.base}/healthz`, { headers: { 'x-request-id': 'not an id; <script>' } });
    expect(bogus.headers.get('x-request-id')).not.toContain('script');

    const broken = await admin(t.base, app).get('/admin/clients');
    expect(broken.status).toBe(500);
    const brokenId = broken.headers.get('x-request-id');

    const requests = log.find('request');
    expect(requests.find((l) => l.requestId === 'trace-abc.1')).toMatchObject({
      level: 20, method: 'POST', route: '/rooms/:id/message', status: 200, durationMs: expect.any(Number),
    });
    expect(requests.find((l) => l.requestId === brokenId)).toMatchObject({ method: 'GET', route: '/admin/clients', status: 500 });
    const failure = log.lines().find((l) => l.level === 50 && l.requestId === brokenId);
    expect(failure?.err?.message).toBe('disk on fire');
  });

  it('logs sockets opened, authenticated, refused (code, app, transport, address) and closed (reason, duration)', async () => {
    const wire = transport === 'uws' ? 'uws' : 'ws';
    // CONNECT auth, as the Vue SDK sends it.
    const a = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice } });
    await once(a, 'connect');
    // Query credentials.
    const b = connect(t.base, { query: { clientKey: app.clientKey, token: tokens.bob } });
    await once(b, 'connect');
    // In-band auth2 with the operator-assigned token (the Flutter SDK's handshake).
    const c = connect(t.base);
    await once(c, 'connect');
    expect(await c.timeout(2000).emitWithAck('auth2', tokens.carol, { 'IM-CLIENT-KEY': app.clientKey })).toMatchObject({ RC: 0 });
    expect(await a.timeout(2000).emitWithAck('chat message', { room: 'lobby', message: 'over the socket' })).toMatchObject({ RC: 0 });
    // A refused upgrade-time token and a refused in-band one.
    const forged = `${tokens.alice!.slice(0, -6)}XXXXXX`;
    secrets.push(forged);
    const refused = connect(t.base, { query: { clientKey: app.clientKey, token: forged } });
    await once(refused, 'connect_error');
    refused.close();
    const deaf = connect(t.base);
    await once(deaf, 'connect');
    expect(await deaf.timeout(2000).emitWithAck('auth2', forged, { 'IM-CLIENT-KEY': app.clientKey })).toMatchObject({ error: { code: 'INVALID_TOKEN' } });
    await once(deaf, 'disconnect', 3000);
    const aId = a.id;
    a.close();
    await until(() => log.find('socket closed').some((l) => l.user === 'alice'));

    const opened = log.find('socket opened');
    expect(opened.length).toBeGreaterThanOrEqual(4);
    for (const l of opened) expect(l).toMatchObject({ level: 20, sid: expect.any(String), transport: wire, remote: expect.stringContaining('127.0.0.1') });
    const authenticated = log.find('socket authenticated');
    expect(authenticated.map((l) => l.user).sort()).toEqual(['alice', 'bob', 'carol']);
    for (const l of authenticated) expect(l).toMatchObject({ app: app.appId, transport: wire, remote: expect.stringContaining('127.0.0.1') });
    const refusals = log.find('socket refused');
    expect(refusals).toHaveLength(2);
    for (const l of refusals) expect(l).toMatchObject({ level: 30, code: 'INVALID_TOKEN', app: app.appId, transport: wire, remote: expect.stringContaining('127.0.0.1') });
    const closed = log.find('socket closed');
    expect(closed.find((l) => l.user === 'alice')).toMatchObject({ app: app.appId, reason: 'client namespace disconnect', durationMs: expect.any(Number) });
    expect(closed.find((l) => l.reason === 'authentication failed: INVALID_TOKEN')).toBeDefined();
    expect(opened.some((l) => l.sid === aId)).toBe(true);
    b.close();
    c.close();
  });

  it('never logs a credential, at trace, through a full session', async () => {
    // Upload, a signed link and its download, then revocations and a new client key.
    const form = new FormData();
    form.append('extra', JSON.stringify({ roomId: 'lobby' }));
    form.append('file', new Blob([makePng(20, 20)], { type: 'image/png' }), 'dot.png');
    const up = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.bob! }, body: form });
    expect(up.status).toBe(200);
    const fileId = ((await up.json()) as { result: { _id: string } }).result._id;
    const link = await user(t.base, app, tokens.bob!).get(`/files/chatserver-upload/${fileId}?signedUrlOnly=1`);
    const signed = new URL(link.body.result.url);
    expect(signed.searchParams.get('sig')).toMatch(/.{16,}/);
    secrets.push(signed.searchParams.get('sig')!);
    expect((await fetch(`${t.base}${signed.pathname}${signed.search}`)).status).toBe(200);
    expect((await admin(t.base, app).del('/admin/clients/bob/token', {})).status).toBe(200);
    expect((await admin(t.base, app).del('/admin/client-key')).status).toBe(200);
    const renewed = await admin(t.base, app).post('/admin/client-key', {});
    expect(renewed.status).toBe(200);
    const newKey = JSON.stringify(renewed.body.result).match(/eyJ[\w.-]+/)![0];
    secrets.push(newKey);
    // Wrong credentials of every kind are logged as refusals, never echoed.
    const wrongApiKey = 'sk_wrong_0123456789abcdef';
    secrets.push(wrongApiKey);
    expect((await api(t.base, { 'IM-API-KEY': wrongApiKey }).get('/admin/clients')).status).toBe(401);
    const wrongOperator = 'not-the-operator-secret-123';
    secrets.push(wrongOperator);
    expect((await api(t.base, { authorization: `Bearer ${wrongOperator}` }).get('/operator/apps')).status).toBe(401);

    const output = log.text();
    expect(output.length).toBeGreaterThan(2000); // trace really logged the session
    for (const secret of secrets) {
      expect(output.includes(secret), `a credential (${secret.slice(0, 6)}…) appears in the log`).toBe(false);
    }
  });
});
