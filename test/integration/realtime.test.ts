import http from 'node:http';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, drainSocket, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { collect, connect, decodeB64, once, until } from '../helpers/sockets.js';

const AUTH_TIMEOUT = 700;

describe.each(TRANSPORTS)('realtime over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let other: TestApp;
  const tokens: Record<string, string> = {};
  let adm: ReturnType<typeof admin>;
  const open: Socket[] = [];
  const track = (s: Socket) => (open.push(s), s);

  beforeAll(async () => {
    t = await startTestServer(transport, { authTimeoutMs: AUTH_TIMEOUT, maxSocketsPerUser: 3 });
    app = await t.createApp('main');
    other = await t.createApp('other');
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id, id.toUpperCase());
    tokens.otherAlice = await t.createUser(other, 'alice');
    adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob'] });
  });
  afterEach(async () => {
    for (const s of open.splice(0)) s.disconnect();
    await until(() => sockets() === 0);
  });
  afterAll(() => t.close());

  const sockets = () => t.server.gateway.connectionCount(app.appId);
  const send = (from: string, room: string, message: string) => user(t.base, app, tokens[from]!).post(`/rooms/${room}/message`, { message });

  /** Connected and authenticated the way the Vue SDK does it (auth2 without ack). */
  async function vueStyle(who: string): Promise<Socket> {
    const before = sockets();
    const s = track(connect(t.base));
    await once(s, 'connect');
    s.emit('auth2', tokens[who], { CLIENT_KEY: app.clientKey, Authorization: tokens[who] });
    await until(() => sockets() === before + 1);
    return s;
  }

  it('(a) Flutter style: conf base64, auth2 with IM-CLIENT-KEY, messages arrive base64-encoded', async () => {
    const s = track(connect(t.base));
    await once(s, 'connect');
    const confAck = await s.timeout(2000).emitWithAck('conf', { encoding: 'base64' });
    expect(decodeB64(confAck)).toMatchObject({ RC: 0 });
    const ack = await s.timeout(2000).emitWithAck('auth2', tokens.alice, { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice });
    expect(typeof ack).toBe('string');
    expect(decodeB64(ack)).toMatchObject({ RC: 0, RM: 'OK', result: { client: 'alice' } });
    const arrived = once(s, 'chat message');
    const sent = await send('bob', 'lobby', 'hello flutter');
    const [payload] = await arrived;
    expect(typeof payload).toBe('string');
    expect(decodeB64(payload)).toMatchObject({ _id: sent.body.result._id, message: 'hello flutter', room: 'lobby', sender: { id: 'bob', clientType: 'user' } });
  });

  it('(b) Vue style: no conf, auth2 without ack, plain JSON arrives', async () => {
    const s = await vueStyle('alice');
    const arrived = once(s, 'chat message');
    await send('bob', 'lobby', 'hello vue');
    const [payload] = await arrived;
    expect(payload).toMatchObject({ message: 'hello vue', sender: { id: 'bob' }, createdAtMS: expect.any(Number) });
  });

  it('conf is per socket: a base64 socket and a JSON socket of one user each get their own encoding', async () => {
    const plain = await vueStyle('alice');
    const b64 = track(connect(t.base));
    await once(b64, 'connect');
    await b64.timeout(2000).emitWithAck('conf', { encoding: 'base64' });
    await b64.timeout(2000).emitWithAck('auth2', tokens.alice, { 'im-client-key': app.clientKey });
    const [p1, p2] = [once(plain, 'chat message'), once(b64, 'chat message')];
    await send('bob', 'lobby', 'both');
    expect((await p1)[0]).toMatchObject({ message: 'both' });
    expect(decodeB64((await p2)[0])).toMatchObject({ message: 'both' });
  });

  describe('(c) upgrade-time credentials', () => {
    const cases: [string, () => Record<string, unknown>][] = [
      ['headers', () => ({ extraHeaders: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice } })],
      ['query parameters', () => ({ query: { clientKey: app.clientKey, token: tokens.alice } })],
      ['the CONNECT auth object', () => ({ auth: { 'IM-CLIENT-KEY': app.clientKey, token: tokens.alice } })],
    ];
    // websocket only (as IMKIT's SDKs configure it), and socket.io-client's defaults: polling, then the upgrade.
    for (const transports of [['websocket'], ['polling', 'websocket']]) {
      for (const [how, opts] of cases) {
        it(`via ${how} (${transports.join(' → ')}): authenticated with no auth2`, async () => {
          const s = track(connect(t.base, { ...opts(), transports }));
          await once(s, 'connect');
          await until(() => sockets() === 1);
          if (transports.length === 2) await until(() => s.io.engine.transport.name === 'websocket');
          const arrived = once(s, 'chat message');
          await send('bob', 'lobby', `via ${how}`);
          expect((await arrived)[0]).toMatchObject({ message: `via ${how}` });
        });
      }
    }

    it('a polling-only client sends, receives and is told when it is disconnected', async () => {
      const token = await t.createUser(app, 'pat');
      await adm.post('/rooms', { _id: 'poll-room', members: ['pat'] });
      const s = track(connect(t.base, { transports: ['polling'], auth: { clientKey: app.clientKey, token } }));
      await once(s, 'connect');
      await until(() => sockets() === 1);
      const arrived = once(s, 'chat message');
      const ack = await s.timeout(3000).emitWithAck('chat message', { room: 'poll-room', message: 'by polling' });
      expect(ack).toMatchObject({ RC: 0, result: { message: 'by polling', sender: { id: 'pat' } } });
      expect((await arrived)[0]).toMatchObject({ message: 'by polling' });
      expect(s.io.engine.transport.name).toBe('polling');
      // Revoking the token cuts the socket with the reason first, as over WebSocket.
      const errorEvent = once(s, 'error');
      const gone = once(s, 'disconnect');
      await adm.del('/admin/clients/pat/token', { token });
      expect((await errorEvent)[0]).toMatchObject({ error: { code: 'INVALID_TOKEN' } });
      expect((await gone)[0]).toBe('io server disconnect');
    });
  });

  describe('(d) handshake errors', () => {
    /**
     * Refused credentials at upgrade (headers, query) and in CONNECT `auth` all reach the client the
     * same way: the session opens, and the Socket.IO CONNECT is answered with CONNECT_ERROR carrying
     * the IMKIT envelope (an HTTP refusal of a websocket upgrade is unreadable in a browser).
     */
    const refusals: [string, Record<string, string>, string][] = [
      ['INVALID_CLIENT_KEY', { clientKey: 'garbage', token: 'x' }, ''],
      ['MISSING_CLIENT_KEY', { token: 'x' }, ''],
      ['INVALID_TOKEN', { clientKey: 'CK', token: 'nope' }, ''],
      ['CLIENT_KEY_MISMATCH', { clientKey: 'CK', token: 'OTHER' }, ''],
    ];
    const fill = (creds: Record<string, string>) =>
      Object.fromEntries(Object.entries(creds).map(([k, v]) => [k, v === 'CK' ? app.clientKey : v === 'OTHER' ? tokens.otherAlice! : v]));
    const paths: [string, (c: Record<string, string>) => Record<string, unknown>][] = [
      ['headers', (c) => ({ extraHeaders: { ...(c.clientKey ? { 'IM-CLIENT-KEY': c.clientKey } : {}), 'IM-Authorization': c.token! } })],
      ['query', (c) => ({ query: c })],
      ['CONNECT auth', (c) => ({ auth: c })],
    ];
    for (const transports of [['websocket'], ['polling', 'websocket']]) {
      for (const [path, options] of paths) {
        it(`via ${path} (${transports.join(' → ')}): connect_error with the code and the envelope`, async () => {
          for (const [code, creds] of refusals) {
            const s = track(connect(t.base, { ...options(fill(creds)), transports }));
            const [err] = await once<Error & { data: any }>(s, 'connect_error');
            expect([err.message, err.data?.error?.code, err.data?.RC]).toEqual([code, code, code === 'CLIENT_KEY_MISMATCH' ? 403 : 401]);
            expect(err.data.error.message).toEqual(expect.any(String));
            s.disconnect();
          }
          expect(sockets()).toBe(0);
        });
      }
    }

    it('a raw upgrade with refused credentials opens, answers CONNECT with CONNECT_ERROR, and is closed at the deadline', async () => {
      const { WebSocket } = await import('ws');
      const ws = new WebSocket(`${t.base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, {
        headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': 'nope' },
      });
      const frames: string[] = [];
      ws.on('message', (d) => frames.push(String(d)));
      const closed = new Promise((resolve) => ws.on('close', resolve));
      await until(() => frames.length === 1);
      ws.send('40');
      await until(() => frames.length === 2);
      expect(frames[1]!.slice(0, 2)).toBe('44');
      expect(JSON.parse(frames[1]!.slice(2))).toEqual({
        message: 'INVALID_TOKEN',
        data: { RC: 401, RM: 'The user token is invalid, expired or revoked', error: { code: 'INVALID_TOKEN', message: 'The user token is invalid, expired or revoked' } },
      });
      await closed;
    });

    it('Engine.IO refusals carry CORS headers, over polling and at upgrade', async () => {
      const origin = { origin: 'http://chat.example' };
      const unknown = await fetch(`${t.base}/socket.io/?EIO=4&transport=polling&sid=gone`, { headers: origin });
      // The Engine.IO path names the origin and allows credentials (a balancer's sticky cookie, withCredentials).
      expect([unknown.status, unknown.headers.get('access-control-allow-origin'), unknown.headers.get('access-control-allow-credentials')]).toEqual([
        400,
        'http://chat.example',
        'true',
      ]);
      expect(await unknown.json()).toEqual({ code: 1, message: 'Session ID unknown' });
      const preflight = await fetch(`${t.base}/socket.io/?EIO=4&transport=polling`, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-headers': 'im-client-key' } });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/IM-Client-Key/i);
      const upgrade = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request(`${t.base}/socket.io/?EIO=3&transport=websocket`, {
          headers: { ...origin, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
        });
        req.on('upgrade', () => reject(new Error('upgraded')));
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
      expect([upgrade.statusCode, upgrade.headers['access-control-allow-origin']]).toEqual([400, 'http://chat.example']);
      upgrade.resume();
    });

    it('in the CONNECT auth object: connect_error carrying the envelope', async () => {
      const s = track(connect(t.base, { auth: { clientKey: app.clientKey, token: 'wrong' } }));
      const [err] = await once<Error & { data: any }>(s, 'connect_error');
      expect(err.message).toBe('INVALID_TOKEN');
      expect(err.data).toMatchObject({ RC: 401, error: { code: 'INVALID_TOKEN' } });
    });

    it('in-band: error ack and error event, then held deaf and closed at the deadline', async () => {
      for (const [extra, token, code] of [
        [{ 'IM-CLIENT-KEY': app.clientKey }, 'wrong-token', 'INVALID_TOKEN'],
        [{}, tokens.alice, 'MISSING_CLIENT_KEY'],
        [{ CLIENT_KEY: 'x.y.z' }, tokens.alice, 'INVALID_CLIENT_KEY'],
        [{ CLIENT_KEY: app.clientKey }, tokens.otherAlice, 'CLIENT_KEY_MISMATCH'],
      ] as const) {
        const s = track(connect(t.base));
        await once(s, 'connect');
        const errorEvent = once(s, 'error');
        const started = Date.now();
        const ack = await s.timeout(2000).emitWithAck('auth2', token, extra);
        expect(ack).toMatchObject({ RC: expect.any(Number), error: { code } });
        expect((await errorEvent)[0]).toMatchObject({ error: { code } });
        // Deaf: a retry is ignored (no ack comes back), and it is still connected.
        await expect(s.timeout(200).emitWithAck('auth2', tokens.alice, { CLIENT_KEY: app.clientKey })).rejects.toThrow();
        expect(s.connected).toBe(true);
        const [reason] = await once(s, 'disconnect', AUTH_TIMEOUT + 1000);
        expect(reason).toBe('io server disconnect');
        expect(Date.now() - started).toBeGreaterThanOrEqual(AUTH_TIMEOUT - 50);
      }
    });

    it('the legacy auth(token, ack) event works with an upgrade-time client key', async () => {
      const s = track(connect(t.base, { extraHeaders: { 'IM-CLIENT-KEY': app.clientKey } }));
      await once(s, 'connect');
      const ack = await s.timeout(2000).emitWithAck('auth', tokens.alice);
      expect(ack).toMatchObject({ RC: 0, result: { client: 'alice' } });
    });

    it('a socket that never authenticates is closed at the deadline; events before auth are refused', async () => {
      const s = track(connect(t.base));
      await once(s, 'connect');
      const ack = await s.timeout(1000).emitWithAck('chat message', { room: 'lobby', message: 'sneaky' });
      expect(ack).toMatchObject({ RC: 401, error: { code: 'NOT_AUTHENTICATED' } });
      const [reason] = await once(s, 'disconnect', AUTH_TIMEOUT + 1000);
      expect(reason).toBe('io server disconnect');
    });
  });

  it('(e) membership changes through REST change what a connected socket receives', async () => {
    const carol = await vueStyle('carol');
    const messages = collect<any>(carol, 'chat message');
    const rooms = collect<any>(carol, 'room');
    await send('alice', 'lobby', 'before carol');
    await drainSocket(t.base, app, carol, 'carol');
    expect(messages).toEqual([]);

    await adm.post('/rooms/lobby/members', { invitees: ['carol'] });
    await until(() => rooms.length > 0);
    expect(rooms.at(-1)).toMatchObject({ _id: 'lobby', members: expect.arrayContaining([expect.objectContaining({ id: 'carol', clientType: 'user' })]) });
    await send('alice', 'lobby', 'with carol');
    await until(() => messages.length === 1);
    expect(messages[0]).toMatchObject({ message: 'with carol' });

    await user(t.base, app, tokens.carol!).post('/rooms/lobby/delete/members', { members: ['carol'] });
    await send('alice', 'lobby', 'after carol');
    await drainSocket(t.base, app, carol, 'carol');
    expect(messages.map((m) => m.message)).toEqual(['with carol']);

    // A room created with carol reaches her at once.
    const created = collect<any>(carol, 'room');
    const r = await user(t.base, app, tokens.alice!).post('/rooms/createAndJoin', { name: 'New', invitee: ['carol'] });
    await until(() => created.some((x) => x._id === r.body.result._id));
    await send('alice', r.body.result._id, 'in new room');
    await until(() => messages.length === 2);
    // Deleting it stops delivery.
    await user(t.base, app, tokens.alice!).del(`/rooms/${r.body.result._id}`);
    await drainSocket(t.base, app, carol, 'carol');
    expect(messages).toHaveLength(2);
  });

  it('socket chat message: ack with the saved message, delivered to members including the sender\'s other devices', async () => {
    const phone = await vueStyle('alice');
    const laptop = await vueStyle('alice');
    const bob = await vueStyle('bob');
    const [onLaptop, onBob] = [once<any>(laptop, 'chat message'), once<any>(bob, 'chat message')];
    const ack = await phone.timeout(2000).emitWithAck('chat message', { room: 'lobby', message: 'from socket', messageType: 'text' });
    expect(ack).toMatchObject({ RC: 0, result: { message: 'from socket', sender: { id: 'alice' } } });
    expect((await onLaptop)[0]._id).toBe(ack.result._id);
    expect((await onBob)[0]._id).toBe(ack.result._id);
    const history = await user(t.base, app, tokens.bob!).get('/rooms/lobby/messages/v3?limit=1');
    expect(history.body.result.data[0]._id).toBe(ack.result._id);
    const refused = await phone.timeout(2000).emitWithAck('chat message', { room: 'nope', message: 'x' });
    expect(refused).toMatchObject({ RC: 404, error: { code: 'ROOM_NOT_FOUND' } });
  });

  it('typing, lastRead and room events reach the room', async () => {
    const alice = await vueStyle('alice');
    const bob = await vueStyle('bob');
    const typing = once<any>(bob, 'typing');
    alice.emit('typing', 'lobby');
    expect((await typing)[0]).toMatchObject({ room: 'lobby', sender: 'alice', senderInfo: { id: 'alice' } });
    const sent = await send('bob', 'lobby', 'read me');
    const lastRead = once<any>(bob, 'lastRead');
    await user(t.base, app, tokens.alice!).put('/rooms/lobby/lastRead', { message: sent.body.result._id });
    expect((await lastRead)[0]).toEqual({ roomID: 'lobby', memberID: 'alice', messageID: sent.body.result._id });
    const room = once<any>(alice, 'room');
    await adm.put('/rooms/lobby', { name: 'Lobby 2' });
    expect((await room)[0]).toMatchObject({ _id: 'lobby', name: 'Lobby 2', members: expect.any(Array) });
    alice.emit('pong'); // ignored, no error
    const unknown = await alice.timeout(1000).emitWithAck('no-such-event', 1);
    expect(unknown).toMatchObject({ error: { code: 'UNKNOWN_EVENT' } });
  });

  it('(f) a newly issued token cuts the sockets of the old one; a revoked token cuts the sockets that used it, and only those', async () => {
    const first = await vueStyle('bob');
    const bystander = await vueStyle('alice');
    const replaced = once<any>(first, 'error');
    const gone = once(first, 'disconnect');
    // A new token invalidates the user's older ones (api-doc user/user-token/update-token.md).
    const extra = await adm.post('/admin/clients', { _id: 'bob', issueAccessToken: true });
    const secondToken = extra.body.result.token as string;
    expect((await replaced)[0]).toMatchObject({ error: { code: 'INVALID_TOKEN' }, reason: 'token revoked' });
    expect((await gone)[0]).toBe('io server disconnect');
    tokens.bob = secondToken;
    const second = await vueStyle('bob');
    const cut = once<any>(second, 'error');
    await adm.del('/admin/clients/bob/token', { token: secondToken });
    expect((await cut)[0]).toMatchObject({ error: { code: 'INVALID_TOKEN' }, reason: 'token revoked' });
    await until(() => !second.connected);
    // Only bob's sockets were touched: the other user's still answers.
    expect(await bystander.timeout(2000).emitWithAck('conf', {})).toMatchObject({ RC: 0 });
    tokens.bob = (await adm.post('/admin/clients', { _id: 'bob', issueAccessToken: true })).body.result.token;
  });

  it('(f) a revoked client key cuts every socket of the application', async () => {
    const own = await t.createApp('revocable');
    const tok = await t.createUser(own, 'dan');
    const s = track(connect(t.base, { auth: { clientKey: own.clientKey, token: tok } }));
    await once(s, 'connect');
    const bystander = await vueStyle('alice');
    const cut = once<any>(s, 'error');
    await admin(t.base, own).del('/admin/client-key');
    expect((await cut)[0]).toMatchObject({ error: { code: 'INVALID_CLIENT_KEY' }, reason: 'client key revoked' });
    await until(() => !s.connected);
    expect(bystander.connected).toBe(true);
    const again = track(connect(t.base, { auth: { clientKey: own.clientKey, token: tok } }));
    const [err] = await once<Error>(again, 'connect_error');
    expect(err.message).toBe('INVALID_CLIENT_KEY');
  });

  it('limits: sockets per user and events per second, each with a clear error', async () => {
    const limited = await startTestServer(transport, { maxSocketsPerUser: 1, socketEventsPerSecond: 5 });
    try {
      const a = await limited.createApp();
      const tok = await limited.createUser(a, 'eve');
      const auth = { clientKey: a.clientKey, token: tok };
      const s1 = track(connect(limited.base, { auth }));
      await once(s1, 'connect');
      const s2 = track(connect(limited.base, { auth }));
      const [err] = await once<Error>(s2, 'connect_error');
      expect(err.message).toBe('TOO_MANY_SOCKETS');
      const acks = await Promise.all(Array.from({ length: 8 }, () => s1.timeout(2000).emitWithAck('typing', 'nowhere')));
      expect(acks.filter((x: any) => x.error?.code === 'RATE_LIMITED')).toHaveLength(3);
    } finally {
      await limited.close();
    }
  });

  it('with ROOMCAST_POLLING=false, polling gets Engine.IO\'s "Transport unknown" and WebSocket still works', async () => {
    const off = await startTestServer(transport, { polling: false });
    try {
      const res = await fetch(`${off.base}/socket.io/?EIO=4&transport=polling`);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: 0, message: 'Transport unknown' });
      const a = await off.createApp();
      const s = track(connect(off.base, { auth: { clientKey: a.clientKey, token: await off.createUser(a, 'zed') } }));
      await once(s, 'connect');
    } finally {
      await off.close();
    }
  });
});
