import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, api, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';

describe.each(TRANSPORTS)('bad input over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let alice: ReturnType<typeof user>;
  let adm: ReturnType<typeof admin>;
  const LIMIT = 4096;

  beforeAll(async () => {
    t = await startTestServer(transport, { maxBodyBytes: LIMIT });
    app = await t.createApp();
    alice = user(t.base, app, await t.createUser(app, 'alice', 'Alice'));
    await t.createUser(app, 'bob');
    adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'r1', name: 'Room', members: ['alice', 'bob'] });
    await alice.post('/rooms/r1/message', { message: 'original' });
  });
  afterAll(() => t.close());

  /** The state that no refused request may change. */
  const snapshot = async () => ({
    room: (await alice.get('/rooms/r1')).body.result,
    history: (await alice.get('/rooms/r1/messages/v3')).body.result,
    me: (await alice.get('/me')).body.result,
    users: (await adm.get('/admin/clients')).body.result,
  });

  it('every refusal is a 4xx envelope with a specific code, and nothing stored changes', async () => {
    const before = await snapshot();
    const cases: [Promise<{ status: number; body: any }>, number, string][] = [
      [alice.post('/rooms/r1/message', '{"message": "unterminated'), 400, 'MALFORMED_JSON'],
      [alice.post('/me', 'null'), 400, 'INVALID_INPUT'],
      [alice.post('/me', '[1,2]'), 400, 'INVALID_INPUT'],
      [alice.post('/me', { nickname: 42 }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/message', { message: 'x', messageType: 7 }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/message', { messageType: 'text' }), 400, 'INVALID_INPUT'],
      // Types named like Object.prototype members are custom types: nothing to show is a 400, never a 500 (found by the fuzzer).
      [alice.post('/rooms/r1/message', { messageType: 'hasOwnProperty' }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/message', { messageType: 'constructor' }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/message', { message: 'x', reply: 'no-such-message' }), 404, 'MESSAGE_NOT_FOUND'],
      [alice.post('/rooms/r1/message', { message: 'x', mentions: 'alice' }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/members', {}), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/members', { invitees: 'bob' }), 400, 'INVALID_INPUT'],
      [alice.post('/rooms/r1/members', { invitees: ['ghost'] }), 404, 'CLIENT_NOT_FOUND'],
      [alice.post('/rooms/createAndJoin', { roomType: 'direct', invitee: ['bob', 'alice', 'x'] }), 400, 'INVALID_INPUT'],
      [alice.put('/rooms/r1/lastRead', {}), 400, 'INVALID_INPUT'],
      [adm.put('/rooms/r1', { status: 7 }), 400, 'INVALID_INPUT'],
      [adm.put('/rooms/r1/member/alice', { property: 'role', value: 'king' }), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', {}), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', { _id: '' }), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', { _id: 'x', token: 'abcdefghij' }), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', { _id: 'x', token: 'abcdefghij', expirationDate: 'yesterday' }), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', { _id: 'x', token: 'abcdefghij', expirationDate: Date.now() - 1000 }), 400, 'INVALID_INPUT'],
      [adm.post('/admin/clients', { _id: 'x', issueAccessToken: 'yes' }), 400, 'INVALID_INPUT'],
      [adm.get('/admin/clients?limit=abc'), 400, 'INVALID_INPUT'],
      [adm.get('/admin/clients?skip=-1'), 400, 'INVALID_INPUT'],
      [alice.get('/rooms/r1/messages/v3?limit=0'), 400, 'INVALID_INPUT'],
      [alice.get('/rooms/r1/messages/v3?sortOrder=sideways'), 400, 'INVALID_INPUT'],
      [alice.get('/rooms/r1/messages/v3?beforeMessage=a&afterMessage=b'), 400, 'INVALID_INPUT'],
      [alice.get('/rooms/r1/messages/v3?afterMessage=ghost'), 404, 'MESSAGE_NOT_FOUND'],
      [alice.get('/no/such/route'), 404, 'ROUTE_NOT_FOUND'],
      [alice.get('/rooms/ghost'), 404, 'ROOM_NOT_FOUND'],
      [alice.post('/rooms/ghost/message', { message: 'x' }), 404, 'ROOM_NOT_FOUND'],
      [adm.get('/admin/clients/ghost'), 404, 'CLIENT_NOT_FOUND'],
      [adm.put('/admin/clients/ghost/token', { token: 'abcdefghij', expirationDate: Date.now() + 60_000 }), 404, 'CLIENT_NOT_FOUND'],
      [alice.post('/rooms/%E0%A4%A', {}), 404, 'ROUTE_NOT_FOUND'],
      [api(t.base, {}).put('/healthz'), 405, 'METHOD_NOT_ALLOWED'],
      [alice.post('/rooms/r1/message', { message: 'x'.repeat(LIMIT + 1) }), 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [promise, status, code] of cases) {
      const r = await promise;
      expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
      expect(r.body.RC).toBe(status);
      expect(typeof r.body.RM).toBe('string');
      // Readable by a browser too: every refusal carries CORS, also the 413 the adapters write before routing.
      expect(r.headers.get('access-control-allow-origin'), `${status} ${code}`).toBe('*');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('a body larger than the limit sent in chunks is refused and the node keeps serving', async () => {
    const big = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
        controller.close();
      },
    });
    const res = await fetch(`${t.base}/rooms/r1/message`, {
      method: 'POST',
      headers: { 'IM-CLIENT-KEY': app.clientKey, 'content-type': 'application/json' },
      body: big,
      duplex: 'half',
    } as RequestInit).catch((err: Error) => err);
    if (!(res instanceof Error)) expect(res.status).toBe(413);
    expect((await alice.get('/me')).status).toBe(200);
  });

  it('survives a burst of garbage requests', async () => {
    const junk = ['{', '"str"', '123', 'true', '[]', '\u0000\u0001'];
    const results = await Promise.all(
      junk.flatMap((body) => [alice.post('/me', body), alice.post('/rooms/r1/message', body), adm.post('/admin/clients', body)]),
    );
    for (const r of results) expect(r.status).toBeGreaterThanOrEqual(400);
    expect(results.every((r) => r.status < 500)).toBe(true);
    expect((await alice.get('/me')).status).toBe(200);
  });

  it('does not let JSON keys like __proto__ reach object prototypes', async () => {
    const r = await alice.post('/me', '{"__proto__":{"admin":true},"constructor":{"x":1},"mood":"ok"}');
    expect(r.status).toBe(200);
    expect(r.body.result.mood).toBe('ok');
    expect(r.body.result.admin).toBeUndefined();
    const me = (await alice.get('/me')).body.result;
    expect(me.admin).toBeUndefined();
    expect(me).not.toHaveProperty('constructor.x');
  });
});
