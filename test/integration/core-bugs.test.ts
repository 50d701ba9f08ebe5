import net from 'node:net';
import { once } from 'node:events';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { Gate } from '../helpers/gated-store.js';
import { collect, connect, once as onceEvent, until } from '../helpers/sockets.js';

/**
 * The bugs issue #13 confirmed against the built server, one test each; every one failed
 * before its fix. Request bodies follow imkit/api-doc (pages/docs/admin/Admin-Create-or-Update-Client.md,
 * pages/docs/client/Me-Mute-room.md, pages/docs/client/Me-Badge.md) and the Vue SDK's
 * `{message, messageType}` / `{_id, messageType: 'recall'}` sends.
 */
describe.each(TRANSPORTS)('core bugs of issue #13 over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const store = new Gate();
  const tokens: Record<string, string> = {};
  const as = (who: string) => user(t.base, app, tokens[who]!);
  let adm: ReturnType<typeof admin>;
  const open: Socket[] = [];
  let seq = 0;

  beforeAll(async () => {
    t = await startTestServer(transport, { socketEventsPerSecond: 10_000 }, { store: await Gate.store(store) });
    app = await t.createApp();
    for (const id of ['owner', 'alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id);
    adm = admin(t.base, app);
  });
  afterEach(async () => {
    for (const s of open.splice(0)) s.disconnect();
    await until(() => t.server.gateway.connectionCount(app.appId) === 0);
  });
  afterAll(() => t.close());

  async function room(members = ['alice', 'bob', 'carol']): Promise<string> {
    const id = `bug-room-${++seq}`;
    const r = await as('owner').post('/rooms/createAndJoin', { _id: id, name: id, invitee: members });
    expect(r.status).toBe(200);
    return id;
  }
  const send = async (who: string, roomId: string, message: string) =>
    (await as(who).post(`/rooms/${roomId}/message`, { message, messageType: 'text' })).body.result._id as string;
  async function socketOf(who: string): Promise<Socket> {
    const s = connect(t.base, { auth: { clientKey: app.clientKey, token: tokens[who] } });
    open.push(s);
    await onceEvent(s, 'connect');
    return s;
  }

  it('1. the API key cannot join a room as a member named undefined', async () => {
    const r = await room();
    const joined = await adm.post(`/rooms/${r}/join`);
    expect(joined.status).toBe(403);
    expect(code(joined)).toBe('USER_TOKEN_REQUIRED');
    const view = (await adm.get(`/rooms/${r}`)).body.result;
    expect(view.members.map((m: { _id: string }) => m._id).sort()).toEqual(['alice', 'bob', 'carol', 'owner']);
    expect(view.memberProperties.every((p: { client: unknown }) => typeof p.client === 'string')).toBe(true);
  });

  it('2a. unpinning a message that is not pinned leaves the pinned one flagged', async () => {
    const r = await room();
    const m1 = await send('alice', r, 'one');
    const m2 = await send('bob', r, 'two');
    expect((await as('owner').post(`/messages/${m1}/pin`)).status).toBe(200);
    const unpin = await as('owner').del(`/messages/${m2}/pin`);
    expect(unpin.status).toBe(200);
    expect(unpin.body.result).toMatchObject({ _id: m2, pinned: false });
    const view = (await as('alice').get(`/rooms/${r}`)).body.result;
    expect(view.pinnedMessage).toMatchObject({ _id: m1, pinned: true });
    const history = (await as('alice').get(`/rooms/${r}/messages/v3`)).body.result.data;
    expect(history.find((m: { _id: string }) => m._id === m1)).toMatchObject({ pinned: true, isPined: true });
  });

  it('2b. deleting the pinned message does not unpin one pinned while the delete ran', async () => {
    const r = await room();
    const m1 = await send('alice', r, 'one');
    const m2 = await send('bob', r, 'two');
    await as('owner').post(`/messages/${m1}/pin`);
    const held = store.hold('deleteMessage', (a) => a[2] === m1);
    const deleting = as('owner').del(`/rooms/${r}/messages/${m1}`);
    await held.reached; // the delete has read the room (pinned: m1) and waits
    expect((await as('owner').post(`/messages/${m2}/pin`)).status).toBe(200);
    held.release();
    expect((await deleting).status).toBe(200);
    expect((await as('alice').get(`/rooms/${r}`)).body.result.pinnedMessage).toMatchObject({ _id: m2, pinned: true });
  });

  it('2c. recalling the pinned message does not unpin one pinned while the recall ran', async () => {
    const r = await room();
    const m1 = await send('alice', r, 'one');
    const m2 = await send('bob', r, 'two');
    await as('owner').post(`/messages/${m1}/pin`);
    const held = store.hold('getMessage', (a) => a[1] === m1);
    const recalling = as('alice').post(`/rooms/${r}/message`, { _id: m1, messageType: 'recall' });
    await held.reached; // the recall has read the room (pinned: m1) and waits
    expect((await as('owner').post(`/messages/${m2}/pin`)).status).toBe(200);
    held.release();
    expect((await recalling).body.result).toMatchObject({ _id: m1, messageType: 'recall' });
    expect((await as('alice').get(`/rooms/${r}`)).body.result.pinnedMessage).toMatchObject({ _id: m2, pinned: true });
  });

  it('3a. issuing a fresh token keeps the user\'s mute list and login time', async () => {
    const r = await room();
    expect((await as('carol').post(`/me/mute/${r}`)).status).toBe(200);
    await socketOf('carol');
    let loggedIn: number | null = null;
    await until(async () => (loggedIn = (await adm.get('/admin/clients/carol')).body.result.lastLoginTimeMS) !== null);
    const reissued = await adm.post('/admin/clients', { _id: 'carol', nickname: 'Carol', avatarUrl: 'http://example.com/c.png', issueAccessToken: true });
    expect(reissued.status).toBe(200);
    expect(reissued.body.result.mute).toEqual([r]);
    const after = (await adm.get('/admin/clients/carol')).body.result;
    expect(after).toMatchObject({ nickname: 'Carol', mute: [r], lastLoginTimeMS: loggedIn });
    tokens.carol = reissued.body.result.token;
  });

  it('3b. concurrent mutes and profile updates of one user are all kept', async () => {
    const rooms = await Promise.all(Array.from({ length: 8 }, () => room(['bob'])));
    // A read-modify-write without compare-and-set would hold here, between its read and its
    // write, while the others complete, and then overwrite them (an atomic update never gets here).
    const held = store.hold('putUser', (a) => (a[1] as { id: string }).id === 'bob');
    const first = as('bob').post('/me/mute/' + rooms[0]);
    await Promise.race([held.reached, first]);
    const results = await Promise.all([
      ...rooms.slice(1).map((r) => as('bob').post(`/me/mute/${r}`)),
      as('bob').post('/me', { nickname: 'Bobby' }),
      as('bob').post('/me', { description: 'hi' }),
    ]);
    held.release();
    results.push(await first);
    expect(results.map((x) => x.status)).toEqual(results.map(() => 200));
    const me = (await as('bob').get('/me')).body.result;
    expect([...me.mute].sort()).toEqual([...rooms].sort());
    expect(me).toMatchObject({ nickname: 'Bobby', description: 'hi' });
  });

  it('4. a message sent to a room deleted meanwhile is 404 ROOM_NOT_FOUND, not 500', async () => {
    const r = await room();
    const held = store.hold('addMessage', (a) => (a[1] as { room: string }).room === r);
    const sending = as('alice').post(`/rooms/${r}/message`, { message: 'late', messageType: 'text' });
    await held.reached;
    expect((await as('owner').del(`/rooms/${r}`)).status).toBe(200);
    held.release();
    const sent = await sending;
    expect(sent.status).toBe(404);
    expect(code(sent)).toBe('ROOM_NOT_FOUND');
  });

  it('5. an oversized REST body gets its 413 after the client finished sending, not a cut connection', async () => {
    // A client (like fetch) writes the whole declared body before it reads the answer. The
    // server must not close while it is still writing: that is an EPIPE, never a 413.
    const { port } = new URL(t.base);
    const socket = net.connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let cut: unknown;
    socket.on('error', (err) => (cut = err));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const total = 8 * 1024 * 1024;
    socket.write(`POST /admin/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nIM-API-KEY: ${app.apiKey}\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent < total && !cut; sent += chunk.length) {
      if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
    }
    await once(socket, 'close');
    expect(cut).toBeUndefined();
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain('PAYLOAD_TOO_LARGE');
  });

  it('6. unread counts and the badge leave out blocked senders and banned rooms; a blocked anchor is not returned', async () => {
    const r1 = await room();
    const r2 = await room();
    expect((await as('bob').post('/blockStatus/my/carol')).status).toBe(200);
    const c1 = await send('carol', r1, 'from carol 1');
    await send('alice', r1, 'from alice');
    const c2 = await send('carol', r1, 'from carol 2');
    await send('alice', r2, 'in r2');
    expect((await as('bob').get(`/rooms/${r1}`)).body.result.unread).toBe(1);
    const listed = (await as('bob').get('/rooms')).body.result.data.find((x: { _id: string }) => x._id === r1);
    expect(listed.unread).toBe(1);
    expect((await as('bob').get('/me/badge')).body.result.badge).toBe(2);
    // Banned from r2: its messages are no longer bob's to read.
    expect((await as('owner').post(`/blockStatus/room/${r2}/bob`)).status).toBe(200);
    expect((await as('bob').get('/me/badge')).body.result.badge).toBe(1);
    // Neither the anchor nor the last message shows the blocked sender.
    const page = (await as('bob').get(`/rooms/${r1}/messages/v3?beforeMessage=${c2}&limit=10`)).body.result.data;
    expect(page.map((m: { message: string }) => m.message)).toEqual(['from alice']);
    expect((await as('bob').get(`/rooms/${r1}`)).body.result.lastMessage).toMatchObject({ message: 'from alice' });
    expect(c1).toBeTruthy();
  });

  it('6b. a reply quoting a blocked sender reaches the blocker without the quoted text', async () => {
    const r = await room();
    await as('bob').post('/blockStatus/my/carol');
    const bob = await socketOf('bob');
    const seen = collect<any>(bob, 'chat message');
    const quoted = await send('carol', r, 'carol secret');
    const reply = (await as('alice').post(`/rooms/${r}/message`, { message: 'answer', messageType: 'text', reply: quoted })).body.result._id;
    await until(() => seen.some((m) => m._id === reply));
    expect(JSON.stringify(seen)).not.toContain('carol secret');
    const history = (await as('bob').get(`/rooms/${r}/messages/v3`)).body.result.data;
    expect(JSON.stringify(history)).not.toContain('carol secret');
    expect((await as('alice').get(`/rooms/${r}/messages/v3`)).body.result.data[0].reply).toMatchObject({ message: 'carol secret' });
    await as('bob').del('/blockStatus/my/carol');
  });
});
