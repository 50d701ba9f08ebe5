import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpReceiver, type Received } from '../helpers/receivers.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { collect, connect, once, until } from '../helpers/sockets.js';

/**
 * Room webhooks (api-doc webhook/webhook.md) against a real local receiver that checks each
 * request's signature: IMKIT's event bodies, bot replies reaching the room's sockets,
 * retries after failures, dead-letters, and a send path that never waits for the receiver.
 */
describe.each(TRANSPORTS)('room webhooks over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const receiver = new HttpReceiver();
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const events = (roomId: string, event?: string) =>
    receiver.received.filter((r) => r.body?.roomID === roomId && (event === undefined || r.body.event === event));

  beforeAll(async () => {
    await receiver.start();
    t = await startTestServer(transport, {
      outboxPollMs: 20, outboxRetryBaseMs: 40, outboxRetryMaxMs: 200, outboxMaxAttempts: 4, webhookTimeoutMs: 500,
    });
    app = await t.createApp('hooks');
    for (const id of ['alice', 'bob', 'carol', 'robot001']) tokens[id] = await t.createUser(app, id, id.toUpperCase());
    const settings = await admin(t.base, app).get('/admin/delivery');
    expect(settings.status).toBe(200);
    receiver.secret = settings.body.result.webhookSecret;
    expect(receiver.secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
    receiver.answer = () => ({ status: 200, body: {} });
  });
  afterAll(async () => {
    await t?.close();
    await receiver.stop();
  });

  const socketOf = async (who: string) => {
    const s = connect(t.base, { auth: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who] } });
    open.push(s);
    await once(s, 'connect');
    return s;
  };
  const deliveries = async () => (await admin(t.base, app).get('/admin/deliveries?limit=500')).body.result.data as any[];

  it('posts IMKIT event bodies, signed; a bot-mode reply posts as the bot, moves botState and reaches the sockets', async () => {
    // The room as api-doc create-a-room.md documents it: webhook + botMode (API key only).
    const created = await admin(t.base, app).post('/rooms', { _id: 'bot-room', name: 'Bot room', members: ['alice', 'bob'], webhook: receiver.url, botMode: true });
    expect(created.status).toBe(200);
    expect(created.body.result).toMatchObject({ webhook: receiver.url, botMode: true, botState: null });
    receiver.answer = (r: Received) =>
      r.body?.event === 'MESSAGE' && r.body.data.sender?._id === 'bob'
        ? { status: 200, body: { senderID: 'robot001', toBotState: 'GREETED', data: { message: 'Hello, I am the bot', messageType: 'text' } } }
        : { status: 200, body: { toBotState: null, data: null } };
    const alice = await socketOf('alice');
    const got = collect<any>(alice, 'chat message');
    const sent = await user(t.base, app, tokens.bob!).post('/rooms/bot-room/message', { message: 'Bonjour', messageType: 'text' });
    expect(sent.status).toBe(200);
    await until(() => got.some((m) => m.sender?._id === 'robot001'));
    const bot = got.find((m) => m.sender?._id === 'robot001');
    expect(bot).toMatchObject({ message: 'Hello, I am the bot', messageType: 'text', room: 'bot-room' });
    const [hook] = events('bot-room', 'MESSAGE');
    expect(hook!.signed).toBe(true);
    expect(hook!.body).toMatchObject({ appID: app.appId, clientID: 'bob', roomID: 'bot-room', event: 'MESSAGE', botState: null });
    expect(hook!.body.data).toMatchObject({ _id: sent.body.result._id, id: sent.body.result._id, message: 'Bonjour', room: 'bot-room', messageType: 'text', messageTimeMS: expect.any(Number) });
    expect(hook!.body.data.sender).toMatchObject({ _id: 'bob', id: 'bob', nickname: 'BOB' });
    expect(hook!.headers['x-roomcast-delivery']).toEqual(expect.any(String));
    const room = await admin(t.base, app).get('/rooms/bot-room');
    expect(room.body.result.botState).toBe('GREETED');
    // The bot's own message raises no MESSAGE event (a bot would answer itself forever).
    await until(async () => (await deliveries()).filter((d) => d.roomId === 'bot-room').every((d) => d.status === 'delivered'));
    expect(events('bot-room', 'MESSAGE')).toHaveLength(1);
    // The next event carries the state the bot moved the room to.
    await user(t.base, app, tokens.alice!).post('/rooms/bot-room/message', { message: 'again' });
    await until(() => events('bot-room', 'MESSAGE').length === 2);
    expect(events('bot-room', 'MESSAGE')[1]!.body).toMatchObject({ botState: 'GREETED', clientID: 'alice' });
  });

  it('a message sent over the socket (chat message) raises the same event', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'sock', members: ['alice', 'bob'], webhook: receiver.url });
    const alice = await socketOf('alice');
    // The JS SDK's socket send: {room, message, messageType}, with an ack.
    const ack = await alice.timeout(5000).emitWithAck('chat message', { room: 'sock', message: 'over the socket', messageType: 'text' });
    expect(ack).toMatchObject({ RC: 0 });
    await until(() => events('sock', 'MESSAGE').length === 1);
    expect(events('sock', 'MESSAGE')[0]!.body).toMatchObject({ clientID: 'alice', data: { message: 'over the socket' } });
  });

  it('sends JOIN_ROOM, ADD_MEMBERS and DELETE_MEMBERS with the members; the application default covers rooms without one', async () => {
    expect((await admin(t.base, app).put('/admin/delivery', { webhook: receiver.url })).status).toBe(200);
    // isPublic: only public rooms may be joined without an invitation.
    await admin(t.base, app).post('/rooms', { _id: 'plain', name: 'Plain', members: ['alice'], isPublic: true });
    // Shapes as Flutter/Vue send them: invitees[] to add, members[] to remove.
    expect((await user(t.base, app, tokens.alice!).post('/rooms/plain/members', { invitees: ['bob'] })).status).toBe(200);
    expect((await user(t.base, app, tokens.carol!).post('/rooms/plain/join')).status).toBe(200);
    expect((await admin(t.base, app).post('/rooms/plain/delete/members', { members: ['bob'] })).status).toBe(200);
    await until(() => events('plain').length === 3);
    const [add, join, del] = ['ADD_MEMBERS', 'JOIN_ROOM', 'DELETE_MEMBERS'].map((e) => events('plain', e)[0]!);
    for (const r of [add, join, del]) expect(r!.signed).toBe(true);
    expect(add!.body).toMatchObject({ appID: app.appId, clientID: 'alice', roomID: 'plain', event: 'ADD_MEMBERS', data: { room: 'plain', sender: { _id: 'alice' } } });
    expect(add!.body.data.members.map((m: any) => [m._id, m.id, m.nickname])).toEqual([['bob', 'bob', 'BOB']]);
    expect(join!.body).toMatchObject({ clientID: 'carol', event: 'JOIN_ROOM', data: { room: 'plain', sender: { _id: 'carol' }, members: [{ _id: 'carol' }] } });
    expect(del!.body).toMatchObject({ clientID: null, event: 'DELETE_MEMBERS', data: { room: 'plain', sender: null, members: [{ _id: 'bob' }] } });
    expect((await admin(t.base, app).put('/admin/delivery', { webhook: null })).status).toBe(200);
  });

  it('resolves a room webhook given as a key of the application\'s named webhooks; replies outside bot mode post nothing', async () => {
    expect((await admin(t.base, app).put('/admin/delivery', { webhooks: { 'meet-taipei-intro': receiver.url } })).status).toBe(200);
    // api-doc list-rooms.md's example: "webhook": "meet-taipei-intro", "botMode": false.
    await admin(t.base, app).post('/rooms', { _id: 'keyed', members: ['alice', 'bob'], webhook: 'meet-taipei-intro', botMode: false });
    receiver.answer = () => ({ status: 200, body: { senderID: 'robot001', toBotState: 'X', data: { message: 'should not appear' } } });
    const bob = await socketOf('bob');
    const got = collect<any>(bob, 'chat message');
    await user(t.base, app, tokens.alice!).post('/rooms/keyed/message', { message: 'via key' });
    await until(async () => (await deliveries()).some((d) => d.roomId === 'keyed' && d.status === 'delivered'));
    expect(events('keyed', 'MESSAGE').map((r) => [r.signed, r.body.data.message])).toEqual([[true, 'via key']]);
    expect(got.map((m) => m.message)).toEqual(['via key']);
    expect((await admin(t.base, app).get('/rooms/keyed')).body.result.botState).toBe(null);
    // An unknown key is dead at once, with the reason.
    await admin(t.base, app).post('/rooms', { _id: 'unknown-key', members: ['alice'], webhook: 'no-such-key' });
    await user(t.base, app, tokens.alice!).post('/rooms/unknown-key/message', { message: 'lost' });
    await until(async () => (await deliveries()).some((d) => d.roomId === 'unknown-key' && d.status === 'dead'));
    expect((await deliveries()).find((d) => d.roomId === 'unknown-key')!.lastError).toBe("unknown webhook key 'no-such-key'");
  });

  it('only the API key sets webhook and botMode; bad settings are a 400', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'owned', members: ['alice'], owner: 'alice' });
    const refused = await user(t.base, app, tokens.alice!).put('/rooms/owned', { webhook: 'http://127.0.0.1:1/steal' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('API_KEY_REQUIRED');
    expect((await user(t.base, app, tokens.alice!).put('/rooms/owned', { name: 'fine' })).status).toBe(200);
    expect((await admin(t.base, app).put('/rooms/owned', { webhook: 'some-key', botMode: true })).body.result).toMatchObject({ webhook: 'some-key', botMode: true });
    expect((await admin(t.base, app).put('/rooms/owned', { webhook: '' })).body.result).toMatchObject({ webhook: null, botMode: true });
    const bad = await admin(t.base, app).put('/admin/delivery', { webhook: 'ftp://example.com' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_INPUT');
    const badKey = await admin(t.base, app).put('/admin/delivery', { apns: { keyId: 'K', teamId: 'T', topic: 'x', privateKey: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----' } });
    expect(badKey.status).toBe(400);
    expect((await user(t.base, app, tokens.alice!).get('/admin/deliveries')).status).toBe(403);
  });

  it('retries a failing receiver with backoff until it recovers: every event arrives, once acknowledged', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'flaky', members: ['alice', 'bob'], webhook: receiver.url });
    let failures = 0;
    receiver.answer = (r) => (r.body?.roomID === 'flaky' && failures++ < 6 ? { status: 500, body: { error: 'down' } } : { status: 200, body: {} });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await user(t.base, app, tokens.alice!).post('/rooms/flaky/message', { message: `m${i}` })).body.result._id);
    await until(async () => {
      const mine = (await deliveries()).filter((d) => d.roomId === 'flaky');
      return mine.length === 4 && mine.every((d) => d.status === 'delivered');
    });
    const acked = events('flaky').filter((_, i) => i >= 6).map((r) => r.body.data._id);
    expect(acked.sort()).toEqual([...ids].sort());
    const mine = (await deliveries()).filter((d) => d.roomId === 'flaky');
    expect(mine.some((d) => d.attempts > 1)).toBe(true);
    expect(mine.find((d) => d.attempts > 1)).toMatchObject({ kind: 'webhook', event: 'MESSAGE', lastError: 'webhook answered HTTP 500' });
  });

  it('dead-letters after the last attempt, and a slow receiver never slows a send', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'slow', members: ['alice'], webhook: receiver.url });
    // Slower than the webhook timeout (500 ms) every time: 4 attempts, then dead.
    receiver.answer = () => ({ status: 200, body: {}, delayMs: 3000 });
    const started = performance.now();
    const sent = await user(t.base, app, tokens.alice!).post('/rooms/slow/message', { message: 'quick' });
    const elapsed = performance.now() - started;
    expect(sent.status).toBe(200);
    expect(elapsed).toBeLessThan(400);
    await until(async () => (await deliveries()).some((d) => d.roomId === 'slow' && d.status === 'dead'), 15_000);
    const dead = (await deliveries()).find((d) => d.roomId === 'slow')!;
    expect(dead).toMatchObject({ status: 'dead', attempts: 4, nextAtMS: null });
    expect(dead.lastError).toMatch(/timed out/);
  });
});
