import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpReceiver } from '../helpers/receivers.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { once, signedIn, until } from '../helpers/sockets.js';

/**
 * IMKIT routes that only api-doc names (neither official SDK calls them): logging out, the
 * push switch, room ids, room existence, message counts, pinned messages, messages around one
 * message and the most recent messages. Paths, methods, headers and result shapes follow the
 * pages as they were before api-doc's reorganisation (imkit/api-doc history, `pages/docs/…`):
 * client/Me-Logout.md, client/Me-Logout-Others.md, client/Me-Enable-Notification.md,
 * client/Me-Disable-Notification.md, client/Me-Get.md, room/Room-List-Room-IDs.md,
 * room/Room-Check-exists.md, room/Room-Count-messages.md, room/Room-List-pined-messages.md,
 * room/Room-List-Room-Messages-Around.md, message/Message-Query-recent.md. Messages are sent
 * and devices registered in the Vue SDK's shapes (FUNTEKco/imkit-vue-sdk-nuxt
 * `dist/imkit-vue-sdk.js`: `{message, messageType}` to `/rooms/:id/message`, `_T.Subscribe`
 * `{type, token, deviceId}`).
 */
describe.each(TRANSPORTS)('IMKIT routes of api-doc only, over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const external = new HttpReceiver();
  const as = (who: string) => user(t.base, app, tokens[who]!);
  const code = (r: { status: number; body: { error?: { code: string } } }) => ({ status: r.status, code: r.body.error?.code });

  beforeAll(async () => {
    await external.start();
    t = await startTestServer(transport, { outboxPollMs: 20, outboxRetryBaseMs: 40, outboxRetryMaxMs: 200 });
    app = await t.createApp('routes-2');
    for (const id of ['alice', 'bob', 'carol', 'dave', 'erin']) tokens[id] = await t.createUser(app, id, id.toUpperCase());
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await t?.close();
    await external.stop();
  });

  const socketOf = (who: string): Promise<Socket> => signedIn(t.base, tokens[who]!, app.clientKey, open);

  /** Vue SDK send shape: POST /rooms/:id/message {message, messageType}. */
  async function send(who: string, room: string, message: string): Promise<{ _id: string; createdAtMS: number }> {
    const r = await as(who).post(`/rooms/${room}/message`, { message, messageType: 'text' });
    expect(r.status).toBe(200);
    return r.body.result;
  }

  /** Resolves once the clock has passed `ms`, so the next message is strictly later (a condition, not a sleep). */
  const after = (ms: number) => until(() => Date.now() > ms);

  /** Whether the user still has a device (a repeated unsubscribe answers n: 0): Vue `_T.Unsubscribe` shape. */
  const hadDevice = async (who: string, deviceId: string) => (await as(who).post('/me/unsubscribe', { type: 'fcm', deviceId })).body.result.n === 1;

  it('POST /me/logout revokes the token of the request (its socket is cut) and the IM-Device-ID device only', async () => {
    // Vue `_T.Subscribe` {type, token, deviceId}
    for (const deviceId of ['alice-phone', 'alice-tablet']) {
      expect((await as('alice').post('/me/subscribe', { type: 'fcm', token: `${deviceId}-fcm`, deviceId })).status).toBe(200);
    }
    const socket = await socketOf('alice');
    const cut = once<any>(socket, 'error');
    const gone = once(socket, 'disconnect');
    // Me-Logout.md: POST with IM-CLIENT-KEY, Authorization and IM-Device-ID, body `{}`.
    const out = await as('alice').post('/me/logout', {}, { 'IM-Device-ID': 'alice-phone' });
    expect(out.status).toBe(200);
    // The revoked token: {token, updatedAt, expirationDate, createdAt, expirationDateMS}
    expect(out.body.result).toEqual({
      token: tokens.alice, updatedAt: expect.any(String), createdAt: expect.any(String),
      expirationDate: new Date(out.body.result.expirationDateMS).toISOString(), expirationDateMS: expect.any(Number),
    });
    expect((await cut)[0]).toMatchObject({ error: { code: 'INVALID_TOKEN' }, reason: 'token revoked' });
    expect((await gone)[0]).toBe('io server disconnect');
    expect(code(await as('alice').get('/me'))).toEqual({ status: 401, code: 'INVALID_TOKEN' });
    tokens.alice = (await admin(t.base, app).post('/admin/clients', { _id: 'alice', issueAccessToken: true })).body.result.token;
    expect(await hadDevice('alice', 'alice-phone')).toBe(false);
    expect(await hadDevice('alice', 'alice-tablet')).toBe(true);
    // The API key has no "me" to log out.
    expect(code(await admin(t.base, app).post('/me/logout', {}))).toEqual({ status: 403, code: 'USER_TOKEN_REQUIRED' });
  });

  it('POST /me/logout-others keeps the token of the request and the IM-Device-ID device, removes every other device', async () => {
    for (const deviceId of ['bob-phone', 'bob-tablet', 'bob-laptop']) {
      expect((await as('bob').post('/me/subscribe', { type: 'fcm', token: `${deviceId}-fcm`, deviceId })).status).toBe(200);
    }
    const socket = await socketOf('bob');
    const out = await as('bob').post('/me/logout-others', {}, { 'IM-Device-ID': 'bob-phone' });
    expect(out.status).toBe(200);
    // Me-Logout-Others.md: {data: [revoked tokens]}; a new token already replaced bob's older ones, so none is left to revoke.
    expect(out.body.result).toEqual({ data: [] });
    expect((await as('bob').get('/me')).status).toBe(200);
    expect(await socket.timeout(5000).emitWithAck('conf', {})).toMatchObject({ RC: 0 });
    expect(await hadDevice('bob', 'bob-tablet')).toBe(false);
    expect(await hadDevice('bob', 'bob-laptop')).toBe(false);
    expect(await hadDevice('bob', 'bob-phone')).toBe(true);
    // Without a device id, no device is the caller's: all go.
    await as('bob').post('/me/subscribe', { type: 'fcm', token: 'bob-phone-fcm', deviceId: 'bob-phone' });
    expect((await as('bob').post('/me/logout-others', {})).status).toBe(200);
    expect(await hadDevice('bob', 'bob-phone')).toBe(false);
  });

  it('POST /me/notification/disable stops message pushes to the user; enable brings them back; GET /me shows notificationEnabled', async () => {
    const configured = await admin(t.base, app).put('/admin/delivery', { externalPush: { url: external.url } });
    external.secret = configured.body.result.webhookSecret;
    await admin(t.base, app).post('/rooms', { _id: 'pushroom', name: 'Push', members: ['carol', 'dave', 'erin'] });
    // Me-Get.md: notificationEnabled in the user's own info, true by default.
    expect((await as('dave').get('/me')).body.result.notificationEnabled).toBe(true);
    // Me-Disable-Notification.md: POST, empty body → the client with notificationEnabled: false.
    const off = await as('dave').post('/me/notification/disable');
    expect(off.status).toBe(200);
    expect(off.body.result).toMatchObject({ _id: 'dave', notificationEnabled: false });
    expect((await as('dave').get('/me')).body.result.notificationEnabled).toBe(false);
    // Another user's view of dave does not carry his switch.
    expect((await admin(t.base, app).get('/rooms/pushroom')).body.result.members.find((m: any) => m._id === 'dave')).not.toHaveProperty('notificationEnabled');

    const first = await send('carol', 'pushroom', 'while dave is off');
    await until(() => external.received.some((r) => r.body?._id === first._id));
    const firstPush = external.received.find((r) => r.body._id === first._id)!;
    expect(firstPush.signed).toBe(true);
    expect(firstPush.body.pushToClients).toEqual(['erin']);

    const on = await as('dave').post('/me/notification/enable');
    expect(on.body.result).toMatchObject({ _id: 'dave', notificationEnabled: true });
    const second = await send('carol', 'pushroom', 'dave is back');
    await until(() => external.received.some((r) => r.body?._id === second._id));
    expect(external.received.find((r) => r.body._id === second._id)!.body.pushToClients.sort()).toEqual(['dave', 'erin']);
    expect(code(await admin(t.base, app).post('/me/notification/disable'))).toEqual({ status: 403, code: 'USER_TOKEN_REQUIRED' });
    await admin(t.base, app).put('/admin/delivery', { externalPush: null });
  });

  it('GET /rooms/ids lists the ids of the caller\'s rooms (not banned ones), with skip and limit', async () => {
    for (const id of ['ids-a', 'ids-b', 'ids-c', 'ids-banned']) await admin(t.base, app).post('/rooms', { _id: id, members: ['erin', 'carol'], owner: 'carol' });
    await admin(t.base, app).post('/rooms', { _id: 'ids-other', members: ['carol'] });
    expect((await as('carol').post('/blockStatus/room/ids-banned/erin')).status).toBe(200);
    // Room-List-Room-IDs.md: GET /rooms/ids?skip=0&limit=200 → {totalCount, data: [ids]}
    const all = await as('erin').get('/rooms/ids?skip=0&limit=200');
    expect(all.status).toBe(200);
    const mine = ['ids-a', 'ids-b', 'ids-c', 'pushroom'];
    expect(all.body.result).toEqual({ totalCount: 4, data: mine });
    expect((await as('erin').get('/rooms/ids')).body.result.data).toEqual(mine);
    expect((await as('erin').get('/rooms/ids?skip=1&limit=2')).body.result).toEqual({ totalCount: 4, data: ['ids-b', 'ids-c'] });
    expect(code(await as('erin').get('/rooms/ids?limit=-1'))).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect(code(await admin(t.base, app).get('/rooms/ids'))).toEqual({ status: 403, code: 'USER_TOKEN_REQUIRED' });
  });

  it('GET /rooms/:id/exists answers {exists}; a direct room exists only for its members', async () => {
    // Room-Check-exists.md: GET /rooms/demo-room/exists → {exists: true|false}
    expect((await as('dave').get('/rooms/ids-other/exists')).body.result).toEqual({ exists: true });
    expect((await as('dave').get('/rooms/no-such-room/exists')).body.result).toEqual({ exists: false });
    expect((await admin(t.base, app).get('/rooms/ids-other/exists')).body.result).toEqual({ exists: true });
    const direct = await as('alice').post('/rooms', { roomType: 'direct', members: ['alice', 'bob'] });
    expect(direct.status).toBe(200);
    const dm = encodeURIComponent(direct.body.result._id);
    expect((await as('bob').get(`/rooms/${dm}/exists`)).body.result).toEqual({ exists: true });
    expect((await as('carol').get(`/rooms/${dm}/exists`)).body.result).toEqual({ exists: false });
  });

  it('GET /rooms/:id/count counts the room\'s messages, or those created or changed after timeInMS', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'counted', members: ['alice', 'bob'] });
    const old1 = await send('alice', 'counted', 'one');
    await send('bob', 'counted', 'two');
    await send('alice', 'counted', 'three');
    const since = Date.now();
    await after(since);
    await send('bob', 'counted', 'four');
    // An edit of an older message (Vue: the same send with the message's _id) changes it after `since`.
    expect((await as('alice').post('/rooms/counted/message', { _id: old1._id, message: 'one, edited', messageType: 'text' })).status).toBe(200);
    // Room-Count-messages.md: GET /rooms/:id/count?timeInMS=… → {count}
    expect((await as('bob').get(`/rooms/counted/count?timeInMS=${since}`)).body.result).toEqual({ count: 2 });
    expect((await as('bob').get('/rooms/counted/count')).body.result).toEqual({ count: 4 });
    expect((await as('bob').get(`/rooms/counted/count?timeInMS=${Date.now() + 60_000}`)).body.result).toEqual({ count: 0 });
    expect(code(await as('carol').get('/rooms/counted/count'))).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
    expect(code(await as('bob').get('/rooms/counted/count?timeInMS=soon'))).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect(code(await as('bob').get('/rooms/nowhere/count'))).toEqual({ status: 404, code: 'ROOM_NOT_FOUND' });
  });

  it('GET /rooms/:id/pined-messages lists the pinned message; not to a reader who blocked its sender; members only', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'pins', members: ['alice', 'bob', 'carol'], owner: 'alice' });
    const m = await send('bob', 'pins', 'remember this');
    // Room-List-pined-messages.md: {totalCount, data: [pinned messages]}
    expect((await as('bob').get('/rooms/pins/pined-messages')).body.result).toEqual({ totalCount: 0, data: [] });
    expect((await as('alice').post(`/messages/${m._id}/pin`)).status).toBe(200);
    const listed = await as('bob').get('/rooms/pins/pined-messages');
    expect(listed.status).toBe(200);
    expect(listed.body.result.totalCount).toBe(1);
    expect(listed.body.result.data).toEqual([expect.objectContaining({ _id: m._id, message: 'remember this', pinned: true, isPined: true, sender: expect.objectContaining({ _id: 'bob' }) })]);
    // The page's request sample: GET /rooms/:id/messages/pined-messages — the same answer.
    expect((await as('bob').get('/rooms/pins/messages/pined-messages')).body.result).toEqual(listed.body.result);
    expect((await as('carol').post('/blockStatus/my/bob')).status).toBe(200);
    expect((await as('carol').get('/rooms/pins/pined-messages')).body.result).toEqual({ totalCount: 0, data: [] });
    expect(code(await as('dave').get('/rooms/pins/pined-messages'))).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
    expect((await as('alice').del(`/messages/${m._id}/pin`)).status).toBe(200);
    expect((await as('bob').get('/rooms/pins/pined-messages')).body.result).toEqual({ totalCount: 0, data: [] });
  });

  it('GET /rooms/:id/messages/:messageID?before=&after= answers the messages around one, newest first', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'around', members: ['alice', 'bob'] });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await send(i % 2 ? 'bob' : 'alice', 'around', `m${i}`))._id);
    // Room-List-Room-Messages-Around.md: GET /rooms/demo-room/messages/<id>?before=10&after=9 → {totalCount, data}
    const r = await as('bob').get(`/rooms/around/messages/${ids[3]}?before=2&after=2`);
    expect(r.status).toBe(200);
    expect(r.body.result.totalCount).toBe(5);
    expect(r.body.result.data.map((m: any) => m.message)).toEqual(['m5', 'm4', 'm3', 'm2', 'm1']);
    expect(r.body.result.data[0]).toMatchObject({ _id: ids[5], messageType: 'text', sender: expect.objectContaining({ _id: 'bob' }), messageTimeMS: expect.any(Number) });
    // At the ends of history; with only one side.
    expect((await as('bob').get(`/rooms/around/messages/${ids[0]}?before=3&after=1`)).body.result.data.map((m: any) => m.message)).toEqual(['m1', 'm0']);
    expect((await as('bob').get(`/rooms/around/messages/${ids[6]}?before=0&after=5`)).body.result.data.map((m: any) => m.message)).toEqual(['m6']);
    // Defaults: 10 each way.
    expect((await as('bob').get(`/rooms/around/messages/${ids[3]}`)).body.result.totalCount).toBe(7);
    // What the reader deleted for themselves is left out, the anchor too (Vue: POST /messages/user-delete {room, messages}).
    expect((await as('bob').post('/messages/user-delete', { room: 'around', messages: [ids[3], ids[4]] })).status).toBe(200);
    expect((await as('bob').get(`/rooms/around/messages/${ids[3]}?before=1&after=1`)).body.result.data.map((m: any) => m.message)).toEqual(['m5', 'm2']);
    expect((await as('alice').get(`/rooms/around/messages/${ids[3]}?before=1&after=1`)).body.result.data.map((m: any) => m.message)).toEqual(['m4', 'm3', 'm2']);
    expect(code(await as('bob').get(`/rooms/around/messages/${ids[3]}?before=501`))).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect(code(await as('bob').get('/rooms/around/messages/not-a-message'))).toEqual({ status: 404, code: 'MESSAGE_NOT_FOUND' });
    expect(code(await as('carol').get(`/rooms/around/messages/${ids[3]}`))).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
    // The literal v3 route still answers history.
    expect((await as('bob').get('/rooms/around/messages/v3?limit=2')).body.result.data.map((m: any) => m.message)).toEqual(['m6', 'm5']);
  });

  it('GET /messages/recent answers the newest messages of the caller\'s rooms, newest first, as {count, data}', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'recent-1', members: ['erin', 'alice'] });
    await admin(t.base, app).post('/rooms', { _id: 'recent-2', members: ['erin', 'bob'] });
    await admin(t.base, app).post('/rooms', { _id: 'recent-3', members: ['alice', 'bob'] });
    const plan: [string, string, string][] = [
      ['alice', 'recent-1', 'r1'], ['bob', 'recent-2', 'r2'], ['alice', 'recent-3', 'not erin\'s'],
      ['erin', 'recent-1', 'r3'], ['bob', 'recent-2', 'r4'], ['bob', 'recent-3', 'not erin\'s either'],
    ];
    let last = 0;
    for (const [who, room, text] of plan) {
      await after(last);
      last = (await send(who, room, text)).createdAtMS;
    }
    // Message-Query-recent.md: GET /messages/recent?limit=20 with client key + token → {count, data}
    const r = await as('erin').get('/messages/recent?limit=3');
    expect(r.status).toBe(200);
    expect(r.body.result.count).toBe(3);
    expect(r.body.result.data.map((m: any) => [m.room, m.message])).toEqual([['recent-2', 'r4'], ['recent-1', 'r3'], ['recent-2', 'r2']]);
    expect(r.body.result.data[0]).toMatchObject({ sender: expect.objectContaining({ _id: 'bob' }), messageType: 'text' });
    // Rooms erin was in before (pushroom, ids-*) hold messages too: the default limit covers more.
    const all = (await as('erin').get('/messages/recent')).body.result;
    expect(all.data.slice(0, 4).map((m: any) => m.message)).toEqual(['r4', 'r3', 'r2', 'r1']);
    expect(all.data.every((m: any) => m.room !== 'recent-3')).toBe(true);
    // A blocked sender's messages are left out in group rooms, as in history.
    expect((await as('erin').post('/blockStatus/my/bob')).status).toBe(200);
    expect((await as('erin').get('/messages/recent?limit=2')).body.result.data.map((m: any) => m.message)).toEqual(['r3', 'r1']);
    expect(code(await as('erin').get('/messages/recent?limit=0'))).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect(code(await admin(t.base, app).get('/messages/recent'))).toEqual({ status: 403, code: 'USER_TOKEN_REQUIRED' });
  });
});
