import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, drainSocket, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { collect, connect, once, until } from '../helpers/sockets.js';

describe.each(TRANSPORTS)('per-user operations over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const as = (who: string) => user(t.base, app, tokens[who]!);
  let adm: ReturnType<typeof admin>;
  const open: Socket[] = [];
  let roomSeq = 0;

  beforeAll(async () => {
    t = await startTestServer(transport);
    app = await t.createApp();
    for (const id of ['owner', 'mod', 'alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id);
    adm = admin(t.base, app);
  });
  afterEach(async () => {
    for (const s of open.splice(0)) s.disconnect();
    await until(() => t.server.gateway.connectionCount(app.appId) === 0);
  });
  afterAll(() => t.close());


  /** A group room owned by `owner`, with `mod` as admin and the given members. */
  async function room(members = ['alice', 'bob', 'carol']): Promise<string> {
    const id = `room-${++roomSeq}`;
    await as('owner').post('/rooms/createAndJoin', { _id: id, name: id, invitee: ['mod', ...members] });
    await as('owner').put(`/rooms/${id}/member/mod`, { property: 'role', value: 'admin' });
    return id;
  }

  async function socketOf(who: string): Promise<Socket> {
    const s = connect(t.base, { auth: { clientKey: app.clientKey, token: tokens[who] } });
    open.push(s);
    await once(s, 'connect');
    return s;
  }

  const send = async (who: string, roomId: string, message: string) => {
    const r = await as(who).post(`/rooms/${roomId}/message`, { message });
    return r;
  };

  describe('pin / unpin', () => {
    it('owner, admins and the API key pin; one pinned message per room; members see it live', async () => {
      const r = await room();
      const m1 = (await send('alice', r, 'one')).body.result._id;
      const m2 = (await send('bob', r, 'two')).body.result._id;
      const carol = await socketOf('carol');
      const updates = collect<any>(carol, 'chat message');
      const roomEvents = collect<any>(carol, 'room');
      expect(code(await as('alice').post(`/messages/${m1}/pin`))).toBe('NOT_ROOM_SUPERUSER');
      const pinned = await as('mod').post(`/messages/${m1}/pin`);
      expect(pinned.body.result).toMatchObject({ _id: m1, pinned: true, isPined: true });
      await until(() => roomEvents.some((x) => x.pinnedMessage?._id === m1));
      expect(updates.find((u) => u._id === m1)).toMatchObject({ pinned: true });
      // Pinning another unpins the previous one.
      await adm.post(`/messages/${m2}/pin`);
      const view = (await as('alice').get(`/rooms/${r}`)).body.result;
      expect(view.pinnedMessage).toMatchObject({ _id: m2, pinned: true });
      const history = (await as('alice').get(`/rooms/${r}/messages/v3`)).body.result.data;
      expect(history.find((m: any) => m._id === m1)).toMatchObject({ pinned: false, isPined: false });
      await until(() => updates.some((u) => u._id === m1 && u.pinned === false));
      expect((await as('owner').del(`/messages/${m2}/pin`)).body.result).toMatchObject({ pinned: false });
      expect((await as('alice').get(`/rooms/${r}`)).body.result.pinnedMessage).toBeNull();
      expect(code(await as('owner').post('/messages/nope/pin'))).toBe('MESSAGE_NOT_FOUND');
    });
  });

  describe('recall', () => {
    it('by the sender, admins or the API key; clears content; same _id live and in history; twice is harmless', async () => {
      const r = await room();
      const bob = await socketOf('bob');
      const seen = collect<any>(bob, 'chat message');
      const sent = await as('alice').post(`/rooms/${r}/message`, { message: 'secret', extra: { a: 1 }, originalUrl: 'http://x/img.png' });
      const id = sent.body.result._id;
      expect(code(await as('carol').post(`/rooms/${r}/message`, { _id: id, messageType: 'recall' }))).toBe('NOT_MESSAGE_SENDER');
      const recalled = await as('alice').post(`/rooms/${r}/message`, { _id: id, messageType: 'recall' });
      expect(recalled.body.result).toMatchObject({ _id: id, messageType: 'recall', message: '' });
      expect(recalled.body.result).not.toHaveProperty('extra');
      expect(recalled.body.result).not.toHaveProperty('originalUrl');
      expect(recalled.body.result.updatedAtMS).toBeGreaterThanOrEqual(sent.body.result.updatedAtMS);
      await until(() => seen.some((m) => m._id === id && m.messageType === 'recall'));
      const again = await as('alice').post(`/rooms/${r}/message`, { _id: id, messageType: 'recall' });
      expect(again.body.result).toMatchObject({ _id: id, messageType: 'recall', message: '' });
      const history = (await as('bob').get(`/rooms/${r}/messages/v3`)).body.result.data;
      expect(history.filter((m: any) => m._id === id)).toEqual([expect.objectContaining({ messageType: 'recall', message: '' })]);
      expect(JSON.stringify(history)).not.toContain('secret');
      expect(code(await as('alice').post(`/rooms/${r}/message`, { _id: id, message: 'edit after recall' }))).toBe('MESSAGE_RECALLED');
      // Admins and the API key recall others' messages.
      const m2 = (await send('bob', r, 'm2')).body.result._id;
      expect((await as('mod').post(`/rooms/${r}/message`, { _id: m2, messageType: 'recall' })).status).toBe(200);
      const m3 = (await send('bob', r, 'm3')).body.result._id;
      expect((await adm.post(`/rooms/${r}/message`, { _id: m3, messageType: 'recall' })).status).toBe(200);
    });

    it('over the socket too, with the same rules', async () => {
      const r = await room();
      const alice = await socketOf('alice');
      const carol = await socketOf('carol');
      const ack = await alice.timeout(2000).emitWithAck('chat message', { room: r, message: 'socket secret' });
      const refused = await carol.timeout(2000).emitWithAck('chat message', { room: r, _id: ack.result._id, messageType: 'recall' });
      expect(refused).toMatchObject({ RC: 403, error: { code: 'NOT_MESSAGE_SENDER' } });
      const recalled = await alice.timeout(2000).emitWithAck('chat message', { room: r, _id: ack.result._id, messageType: 'recall' });
      expect(recalled).toMatchObject({ RC: 0, result: { _id: ack.result._id, messageType: 'recall', message: '' } });
    });
  });

  describe('edit', () => {
    it('sender only; editedAt set; delivered as an update', async () => {
      const r = await room();
      const bob = await socketOf('bob');
      const seen = collect<any>(bob, 'chat message');
      const id = (await send('alice', r, 'draft')).body.result._id;
      expect(code(await as('owner').post(`/rooms/${r}/message`, { _id: id, message: 'owner edit' }))).toBe('NOT_MESSAGE_SENDER');
      const edited = await as('alice').post(`/rooms/${r}/message`, { _id: id, message: 'final' });
      expect(edited.body.result).toMatchObject({ _id: id, message: 'final', editedAtMS: expect.any(Number) });
      await until(() => seen.some((m) => m._id === id && m.message === 'final'));
    });
  });

  describe('delete', () => {
    it('owner, admins or API key; messageDeleted event; gone from history; _all wipes', async () => {
      const r = await room();
      const ids = [];
      for (const m of ['a', 'b', 'c']) ids.push((await send('alice', r, m)).body.result._id);
      const bob = await socketOf('bob');
      const deleted = collect<any>(bob, 'messageDeleted');
      expect(code(await as('alice').del(`/rooms/${r}/messages/${ids[0]}`))).toBe('NOT_ROOM_SUPERUSER');
      const res = await as('mod').del(`/rooms/${r}/messages/${ids[0]}`);
      expect(res.body.result).toMatchObject({ deletedCount: 1, roomID: r, messageID: ids[0], deletedBy: 'mod' });
      await until(() => deleted.length === 1);
      expect(deleted[0]).toEqual({ room: r, messageID: ids[0] });
      const history = (await as('bob').get(`/rooms/${r}/messages/v3`)).body.result;
      expect(history.data.map((m: any) => m._id)).toEqual([ids[2], ids[1]]);
      expect(history.totalCount).toBe(2);
      expect(code(await as('owner').del(`/rooms/${r}/messages/${ids[0]}`))).toBe('MESSAGE_NOT_FOUND');
      expect((await adm.del(`/rooms/${r}/messages/_all`)).body.result.deletedCount).toBe(2);
      await until(() => deleted.some((d) => d.messageID === '_all'));
      expect((await as('bob').get(`/rooms/${r}/messages/v3`)).body.result).toMatchObject({ totalCount: 0, data: [] });
    });
  });

  describe('personal block', () => {
    it('any user blocks; not oneself; direct room closed both ways; didBlockAt/wasBlockedAt shown', async () => {
      const direct = (await as('alice').post('/rooms/createAndJoin', { invitee: 'bob' })).body.result._id;
      expect(code(await as('alice').post('/blockStatus/my/alice'))).toBe('SELF_BLOCK_FORBIDDEN');
      expect(code(await as('alice').post('/blockStatus/my/ghost'))).toBe('CLIENT_NOT_FOUND');
      const b = await as('alice').post('/blockStatus/my/bob');
      // Shapes as api-doc moderation/block-user/block-a-user.md and list-blocked-users.md show them.
      expect(b.body.result).toMatchObject({ appID: expect.any(String), blocker: 'alice', blockee: { id: 'bob' }, room: direct, createdAt: expect.any(String), updatedAt: expect.any(String) });
      // A repeated block is 409 USER_ALREADY_BLOCKED (api-doc moderation/block-user/block-a-user.md).
      const again = await as('alice').post('/blockStatus/my/bob');
      expect({ status: again.status, code: code(again) }).toEqual({ status: 409, code: 'USER_ALREADY_BLOCKED' });
      expect((await as('alice').get('/blockStatus/my')).body.result.data.map((x: any) => x.blockee.id)).toEqual(['bob']);
      expect((await as('alice').get('/blockStatus/my')).body.result.data[0].room).toMatchObject({ _id: direct, roomType: 'direct' });
      expect((await as('alice').get('/blockStatus/my/bob')).status).toBe(200);
      expect(code(await as('alice').get('/blockStatus/my/carol'))).toBe('BLOCK_NOT_FOUND');
      expect(code(await as('bob').post(`/rooms/${direct}/message`, { message: 'hi' }))).toBe('BLOCKED');
      expect(code(await as('alice').post(`/rooms/${direct}/message`, { message: 'hi' }))).toBe('BLOCKED');
      expect((await as('alice').get(`/rooms/${direct}`)).body.result).toMatchObject({ didBlockAtMS: expect.any(Number) });
      expect((await as('bob').get(`/rooms/${direct}`)).body.result).toMatchObject({ wasBlockedAtMS: expect.any(Number) });
      expect((await as('alice').del('/blockStatus/my/bob')).status).toBe(200);
      expect(code(await as('alice').del('/blockStatus/my/bob'))).toBe('BLOCK_NOT_FOUND');
      expect((await as('bob').post(`/rooms/${direct}/message`, { message: 'hi again' })).status).toBe(200);
      expect(code(await adm.post('/blockStatus/my/bob'))).toBe('USER_TOKEN_REQUIRED');
    });

    it('in a group room the blocker hears nothing from the blockee, live or in history; others still do', async () => {
      const r = await room();
      await as('alice').post('/blockStatus/my/bob');
      try {
        const alice = await socketOf('alice');
        const carol = await socketOf('carol');
        const aliceSaw = collect<any>(alice, 'chat message');
        const aliceTyping = collect<any>(alice, 'typing');
        const carolSaw = collect<any>(carol, 'chat message');
        await send('bob', r, 'from bob');
        await send('carol', r, 'from carol');
        const bobSocket = await socketOf('bob');
        await bobSocket.timeout(2000).emitWithAck('typing', r);
        await until(() => carolSaw.length === 2);
        await drainSocket(t.base, app, alice, 'alice');
        expect(aliceSaw.map((m) => m.message)).toEqual(['from carol']);
        expect(aliceTyping).toEqual([]);
        const aliceHistory = (await as('alice').get(`/rooms/${r}/messages/v3`)).body.result.data.map((m: any) => m.message);
        expect(aliceHistory).toEqual(['from carol']);
        const carolHistory = (await as('carol').get(`/rooms/${r}/messages/v3`)).body.result.data.map((m: any) => m.message);
        expect(carolHistory).toEqual(['from carol', 'from bob']);
        // A block made while connected applies at once; unblocking restores delivery.
        await as('alice').post('/blockStatus/my/carol');
        await send('carol', r, 'carol blocked');
        await as('alice').del('/blockStatus/my/carol');
        await send('carol', r, 'carol unblocked');
        await until(() => aliceSaw.length === 2);
        expect(aliceSaw.map((m) => m.message)).toEqual(['from carol', 'carol unblocked']);
      } finally {
        await as('alice').del('/blockStatus/my/bob');
      }
    });
  });

  describe('ban', () => {
    it('owner, admins or API key ban; banned user cannot send, read or rejoin, and stops receiving at once', async () => {
      const r = await room();
      const carol = await socketOf('carol');
      const carolSaw = collect<any>(carol, 'chat message');
      expect(code(await as('alice').post(`/blockStatus/room/${r}/carol`))).toBe('NOT_ROOM_SUPERUSER');
      expect(code(await as('mod').post(`/blockStatus/room/${r}/owner`))).toBe('CANNOT_BAN_OWNER');
      expect(code(await as('mod').post(`/blockStatus/room/${r}/mod`))).toBe('SELF_BLOCK_FORBIDDEN');
      const ban = await as('mod').post(`/blockStatus/room/${r}/carol`);
      // A repeated ban is 409 USER_ALREADY_BLOCKED (api-doc moderation/ban-member/ban-a-member.md).
      const again = await as('mod').post(`/blockStatus/room/${r}/carol`);
      expect({ status: again.status, code: code(again) }).toEqual({ status: 409, code: 'USER_ALREADY_BLOCKED' });
      // Shapes as api-doc moderation/ban-member/ban-a-member.md and list-banned-members.md show them.
      expect(ban.body.result).toMatchObject({ appID: expect.any(String), room: r, blockee: { id: 'carol' }, blocker: 'mod', createdAt: expect.any(String), updatedAt: expect.any(String) });
      await send('alice', r, 'after ban');
      expect(code(await as('carol').post(`/rooms/${r}/message`, { message: 'let me' }))).toBe('BANNED_FROM_ROOM');
      expect(code(await as('carol').get(`/rooms/${r}`))).toBe('BANNED_FROM_ROOM');
      expect(code(await as('carol').get(`/rooms/${r}/messages/v3`))).toBe('BANNED_FROM_ROOM');
      expect(code(await as('carol').post(`/rooms/${r}/join`))).toBe('BANNED_FROM_ROOM');
      const ack = await carol.timeout(2000).emitWithAck('chat message', { room: r, message: 'socket' });
      expect(ack).toMatchObject({ error: { code: 'BANNED_FROM_ROOM' } });
      expect((await as('carol').get('/rooms')).body.result.data.map((x: any) => x._id)).not.toContain(r);
      const list = await as('owner').get(`/blockStatus/room/${r}`);
      expect(list.body.result.data.map((x: any) => x.blockee.id)).toEqual(['carol']);
      expect(list.body.result.data[0]).toMatchObject({ blocker: { id: 'mod' }, room: { _id: r, id: r, roomType: 'group', createdTimeMS: expect.any(Number) } });
      expect(code(await as('alice').get(`/blockStatus/room/${r}`))).toBe('NOT_ROOM_SUPERUSER');
      await drainSocket(t.base, app, carol, 'carol');
      expect(carolSaw).toEqual([]);
      // A fresh socket does not get the room either.
      const carol2 = await socketOf('carol');
      const carol2Saw = collect<any>(carol2, 'chat message');
      await send('alice', r, 'still banned');
      await drainSocket(t.base, app, carol2, 'carol');
      expect(carol2Saw).toEqual([]);
      // Unban restores access.
      expect((await adm.del(`/blockStatus/room/${r}/carol`)).status).toBe(200);
      expect(code(await adm.del(`/blockStatus/room/${r}/carol`))).toBe('BLOCK_NOT_FOUND');
      await send('alice', r, 'after unban');
      await until(() => carolSaw.length === 1);
      expect(carolSaw[0].message).toBe('after unban');
      expect((await as('carol').get(`/rooms/${r}/messages/v3`)).status).toBe(200);
    });
  });

  describe('freeze', () => {
    it('owner, admins or API key freeze; members get ROOM_FROZEN; owner/admins/API key still post', async () => {
      const r = await room();
      expect(code(await as('alice').put(`/rooms/${r}`, { status: 0 }))).toBe('NOT_ROOM_SUPERUSER');
      expect((await as('mod').put(`/rooms/${r}`, { status: 0 })).body.result.status).toBe(0);
      expect(code(await send('alice', r, 'hello?'))).toBe('ROOM_FROZEN');
      const alice = await socketOf('alice');
      expect(await alice.timeout(2000).emitWithAck('chat message', { room: r, message: 'x' })).toMatchObject({ error: { code: 'ROOM_FROZEN' } });
      expect((await send('owner', r, 'announcement')).status).toBe(200);
      expect((await send('mod', r, 'mod note')).status).toBe(200);
      expect((await adm.post('/messages', { room: r, sender: 'alice', message: 'via api' })).status).toBe(200);
      await adm.put(`/rooms/${r}`, { status: 1 });
      expect((await send('alice', r, 'thawed')).status).toBe(200);
    });
  });

  describe('mute', () => {
    it('stored and shown on the room as muted, by the user or the API key', async () => {
      const r = await room();
      const muted = await as('alice').post(`/me/mute/${r}`);
      expect(muted.body.result.mute).toEqual([r]);
      expect((await as('alice').get(`/rooms/${r}`)).body.result.muted).toBe(true);
      expect((await as('bob').get(`/rooms/${r}`)).body.result.muted).toBe(false);
      expect((await as('alice').get('/rooms')).body.result.data.find((x: any) => x._id === r).muted).toBe(true);
      await as('alice').del(`/me/mute/${r}`);
      expect((await as('alice').get(`/rooms/${r}`)).body.result.muted).toBe(false);
      expect((await adm.post(`/admin/clients/bob/mute/${r}`)).body.result.mute).toEqual([r]);
      expect((await as('bob').get(`/rooms/${r}`)).body.result.muted).toBe(true);
      await adm.del(`/admin/clients/bob/mute/${r}`);
      expect((await as('bob').get('/me')).body.result.mute).toEqual([]);
      expect(code(await as('alice').post(`/admin/clients/bob/mute/${r}`))).toBe('API_KEY_REQUIRED');
      const outsider = await adm.post('/rooms', { name: 'x', members: ['bob'] });
      expect(code(await as('alice').post(`/me/mute/${outsider.body.result._id}`))).toBe('NOT_ROOM_MEMBER');
    });
  });
});
