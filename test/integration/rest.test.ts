import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';

describe.each(TRANSPORTS)('IMKIT REST core over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let alice: ReturnType<typeof user>;
  let bob: ReturnType<typeof user>;
  let carol: ReturnType<typeof user>;
  let adm: ReturnType<typeof admin>;

  beforeAll(async () => {
    t = await startTestServer(transport);
    app = await t.createApp();
    alice = user(t.base, app, await t.createUser(app, 'alice', 'Alice'));
    bob = user(t.base, app, await t.createUser(app, 'bob', 'Bob'));
    carol = user(t.base, app, await t.createUser(app, 'carol', 'Carol'));
    adm = admin(t.base, app);
  });
  afterAll(() => t.close());


  describe('users', () => {
    it('upsert is idempotent, keeps custom fields, and lists with skip/limit', async () => {
      const first = await adm.post('/admin/clients', { _id: 'zed', nickname: 'Zed', avatarUrl: 'http://a/z.png', team: 'blue' });
      expect(first.body.result).toMatchObject({ _id: 'zed', id: 'zed', nickname: 'Zed', clientType: 'user', team: 'blue' });
      const second = await adm.post('/admin/clients', { _id: 'zed', description: 'hi' });
      expect(second.body.result).toMatchObject({ nickname: 'Zed', description: 'hi', team: 'blue' });
      const page = await adm.get('/admin/clients?skip=1&limit=2');
      expect(page.body.result.data).toHaveLength(2);
      expect(page.body.result.totalCount).toBeGreaterThanOrEqual(4);
      expect(typeof page.body.result.data[0].createdAt).toBe('string');
    });

    it('GET /me and POST /me', async () => {
      expect((await alice.get('/me')).body.result).toMatchObject({ _id: 'alice', nickname: 'Alice' });
      const updated = await alice.post('/me', { nickname: 'Alice A.', description: 'tester', mood: 'happy' });
      expect(updated.body.result).toMatchObject({ nickname: 'Alice A.', description: 'tester', mood: 'happy' });
      expect((await alice.get('/me')).body.result.nickname).toBe('Alice A.');
    });

    it('GET /me/pref answers an array', async () => {
      const r = await alice.get('/me/pref');
      expect(r.body.result).toEqual([]);
    });

    it('/me refuses the API key, which has no user', async () => {
      expect(code(await adm.get('/me'))).toBe('USER_TOKEN_REQUIRED');
    });

    it('deleting a user removes them from their rooms and invalidates their token', async () => {
      const tok = await t.createUser(app, 'temp');
      const temp = user(t.base, app, tok);
      const room = await adm.post('/rooms', { name: 'with temp', members: ['temp', 'alice'] });
      expect((await temp.get('/me')).status).toBe(200);
      expect((await adm.del('/admin/clients/temp')).status).toBe(200);
      expect(code(await temp.get('/me'))).toBe('INVALID_TOKEN');
      const r = await alice.get(`/rooms/${room.body.result._id}`);
      expect(r.body.result.members.map((m: { id: string }) => m.id)).toEqual(['alice']);
      expect((await adm.get('/admin/clients/temp')).status).toBe(404);
    });
  });

  describe('rooms and members', () => {
    let roomId: string;

    it('POST /rooms creates without joining the caller; members populated', async () => {
      const r = await adm.post('/rooms', { _id: 'general', name: 'General', members: ['alice', 'bob'], roomTags: ['team'], extParams: { color: 'red' }, isPublic: true });
      expect(r.status).toBe(200);
      roomId = r.body.result._id;
      expect(r.body.result).toMatchObject({
        _id: 'general', id: 'general', name: 'General', roomType: 'group', roomTags: ['team'],
        extParams: '{"color":"red"}', createdTimeMS: expect.any(Number), lastMessage: null,
      });
      expect(r.body.result.members).toEqual([
        expect.objectContaining({ _id: 'alice', id: 'alice', nickname: expect.any(String), clientType: 'user' }),
        expect.objectContaining({ _id: 'bob', id: 'bob', nickname: 'Bob', clientType: 'user' }),
      ]);
      expect(code(await adm.post('/rooms', { _id: 'general' }))).toBe('ROOM_EXISTS');
    });

    it('createAndJoin joins the caller; a string invitee makes a stable direct room', async () => {
      const d1 = await alice.post('/rooms/createAndJoin', { invitee: 'bob' });
      expect(d1.body.result.roomType).toBe('direct');
      expect(d1.body.result.members.map((m: { id: string }) => m.id).sort()).toEqual(['alice', 'bob']);
      const d2 = await bob.post('/rooms/createAndJoin', { invitee: 'alice' });
      expect(d2.body.result._id).toBe(d1.body.result._id);
      const g = await alice.post('/rooms/createAndJoin', { name: 'Trio', invitee: ['bob', 'carol'] });
      expect(g.body.result).toMatchObject({ roomType: 'group', owner: expect.objectContaining({ id: 'alice' }) });
      expect(g.body.result.members).toHaveLength(3);
      expect(code(await alice.post('/rooms/createAndJoin', { invitee: 'nobody' }))).toBe('CLIENT_NOT_FOUND');
    });

    it('only members read a room: 403 NOT_ROOM_MEMBER otherwise, 404 for unknown rooms', async () => {
      expect((await alice.get(`/rooms/${roomId}`)).status).toBe(200);
      const r = await carol.get(`/rooms/${roomId}`);
      expect(r.status).toBe(403);
      expect(code(r)).toBe('NOT_ROOM_MEMBER');
      expect(code(await alice.get('/rooms/nope'))).toBe('ROOM_NOT_FOUND');
      expect((await adm.get(`/rooms/${roomId}`)).status).toBe(200);
    });

    it('GET /rooms lists my rooms as {totalCount, data}, with q filters, sort and paging', async () => {
      const all = await alice.get('/rooms');
      expect(all.body.result.totalCount).toBe(all.body.result.data.length);
      for (const room of all.body.result.data) expect(room.members.map((m: { id: string }) => m.id)).toContain('alice');
      const tagged = await alice.get(`/rooms?q=${encodeURIComponent(JSON.stringify({ members: 'alice', roomTags: 'team' }))}`);
      expect(tagged.body.result.data.map((r: { _id: string }) => r._id)).toEqual(['general']);
      const withCarol = await alice.get(`/rooms?q=${encodeURIComponent(JSON.stringify({ members: { $all: ['alice', 'carol'] } }))}`);
      expect(withCarol.body.result.data.every((r: { members: { id: string }[] }) => r.members.some((m) => m.id === 'carol'))).toBe(true);
      const page = await alice.get('/rooms?skip=1&limit=1&sort=createdTime');
      expect(page.body.result.data).toHaveLength(1);
      expect(page.body.result.totalCount).toBe(all.body.result.totalCount);
      expect(code(await alice.get(`/rooms?q=${encodeURIComponent('{"name":{"$where":"1"}}')}`))).toBe('INVALID_QUERY');
      expect(code(await alice.get('/rooms?q={oops'))).toBe('INVALID_QUERY');
      expect(code(await alice.get('/rooms?sort=-bogus'))).toBe('INVALID_INPUT');
    });

    it('join, add members, set role, leave and kick follow the permission table', async () => {
      expect((await carol.post(`/rooms/${roomId}/join`)).status).toBe(200);
      expect((await carol.get(`/rooms/${roomId}`)).status).toBe(200);
      // A plain member cannot kick others or promote.
      expect(code(await carol.post(`/rooms/${roomId}/delete/members`, { members: ['bob'] }))).toBe('NOT_ROOM_SUPERUSER');
      expect(code(await carol.put(`/rooms/${roomId}/member/bob`, { property: 'role', value: 'admin' }))).toBe('NOT_ROOM_SUPERUSER');
      // The API key promotes alice; alice (admin now) may kick.
      const promoted = await adm.put(`/rooms/${roomId}/member/alice`, { property: 'role', value: 'admin' });
      expect(promoted.body.result.memberProperties).toContainEqual(expect.objectContaining({ client: 'alice', role: 'admin' }));
      expect((await alice.post(`/rooms/${roomId}/delete/members`, { members: ['carol'] })).status).toBe(200);
      expect(code(await carol.get(`/rooms/${roomId}`))).toBe('NOT_ROOM_MEMBER');
      // Any member adds; anyone leaves by naming themselves.
      expect((await bob.post(`/rooms/${roomId}/members`, { invitees: ['carol'] })).status).toBe(200);
      expect((await carol.post(`/rooms/${roomId}/delete/members`, { members: ['carol'] })).status).toBe(200);
      expect(code(await carol.get(`/rooms/${roomId}`))).toBe('NOT_ROOM_MEMBER');
      expect(code(await carol.post(`/rooms/${roomId}/members`, { invitees: ['carol'] }))).toBe('NOT_ROOM_MEMBER');
    });

    it('PUT /rooms/:id by admins only; ownership fields checked', async () => {
      expect(code(await bob.put(`/rooms/${roomId}`, { name: 'Hacked' }))).toBe('NOT_ROOM_SUPERUSER');
      const r = await alice.put(`/rooms/${roomId}`, { name: 'General chat', roomTags: ['team', 'all'] });
      expect(r.body.result).toMatchObject({ name: 'General chat', roomTags: ['team', 'all'] });
      expect(code(await alice.put(`/rooms/${roomId}`, { managers: ['carol'] }))).toBe('INVALID_INPUT');
      const m = await alice.put(`/rooms/${roomId}`, { managers: ['bob'] });
      expect(m.body.result.managers).toEqual(['bob']);
    });

    it('direct rooms cannot be joined by outsiders or grown', async () => {
      const d = await alice.post('/rooms/createAndJoin', { invitee: 'bob' });
      expect(code(await carol.post(`/rooms/${d.body.result._id}/join`))).toBe('DIRECT_ROOM_CLOSED');
      expect(code(await alice.post(`/rooms/${d.body.result._id}/members`, { invitees: ['carol'] }))).toBe('DIRECT_ROOM_CLOSED');
    });

    it('DELETE /rooms/:id by superusers; then gone', async () => {
      const g = await alice.post('/rooms/createAndJoin', { name: 'Temp', invitee: ['bob'] });
      const id = g.body.result._id;
      expect(code(await bob.del(`/rooms/${id}`))).toBe('NOT_ROOM_SUPERUSER');
      expect((await alice.del(`/rooms/${id}`)).body.result).toEqual({ n: 1, ok: 1 });
      expect(code(await alice.get(`/rooms/${id}`))).toBe('ROOM_NOT_FOUND');
    });

    it('system messages are posted when asked for', async () => {
      const g = await alice.post('/rooms/createAndJoin', { name: 'Sys', invitee: ['bob'], systemMessage: true });
      const id = g.body.result._id;
      await alice.post(`/rooms/${id}/members`, { invitees: ['carol'], systemMessage: true });
      await carol.post(`/rooms/${id}/delete/members`, { members: ['carol'], systemMessage: true });
      const h = await alice.get(`/rooms/${id}/messages/v3`);
      expect(h.body.result.data.map((m: { messageType: string }) => m.messageType)).toEqual(['leaveRoom', 'addMembers']);
      expect(h.body.result.data[1].extra.invitees[0]).toMatchObject({ _id: 'carol' });
    });
  });

  describe('messages, history and unread', () => {
    let roomId: string;
    const ids: string[] = [];

    beforeAll(async () => {
      const r = await adm.post('/rooms', { name: 'History', members: ['alice', 'bob'] });
      roomId = r.body.result._id;
      for (let i = 1; i <= 7; i++) {
        const sender = i % 2 ? alice : bob;
        const m = await sender.post(`/rooms/${roomId}/message`, { roomId, messageType: 'text', message: `m${i}`, reply: null, mentions: [] });
        expect(m.status).toBe(200);
        ids.push(m.body.result._id);
      }
    });

    it('a sent message has the IMKIT shape', async () => {
      const r = await alice.post(`/rooms/${roomId}/message`, { message: 'shape', extra: { k: 1 }, reply: ids[0] });
      const msg = r.body.result;
      expect(msg).toMatchObject({
        _id: expect.any(String), id: msg._id, room: roomId, messageType: 'text', message: 'shape', extra: { k: 1 },
        sender: expect.objectContaining({ _id: 'alice', id: 'alice', clientType: 'user' }),
        createdAtMS: expect.any(Number), updatedAtMS: expect.any(Number), messageTimeMS: expect.any(Number),
        reply: expect.objectContaining({ _id: ids[0], message: 'm1' }),
      });
      expect(msg).not.toHaveProperty('roomId');
      ids.push(msg._id);
      const room = await bob.get(`/rooms/${roomId}`);
      expect(room.body.result.lastMessage).toMatchObject({ _id: msg._id, sender: expect.objectContaining({ id: 'alice' }) });
    });

    it('history is newest first; pages from beforeMessage include the anchor as data[0]', async () => {
      const first = await alice.get(`/rooms/${roomId}/messages/v3?limit=3`);
      expect(first.body.result.totalCount).toBe(8);
      expect(first.body.result.data.map((m: { _id: string }) => m._id)).toEqual([ids[7], ids[6], ids[5]]);
      expect(first.body.result.userDeletedIDs).toEqual([]);
      const next = await alice.get(`/rooms/${roomId}/messages/v3?limit=3&beforeMessage=${ids[5]}&sortOrder=desc`);
      expect(next.body.result.data.map((m: { _id: string }) => m._id)).toEqual([ids[5], ids[4], ids[3]]);
      // Walking like the Vue SDK (drop data[0] of each later page) sees every message once.
      const seen: string[] = [];
      let page = await alice.get(`/rooms/${roomId}/messages/v3?limit=3`);
      seen.push(...page.body.result.data.map((m: { _id: string }) => m._id));
      while (seen.length < page.body.result.totalCount) {
        page = await alice.get(`/rooms/${roomId}/messages/v3?limit=3&beforeMessage=${seen.at(-1)}&sortOrder=desc`);
        const data = page.body.result.data.map((m: { _id: string }) => m._id);
        expect(data[0]).toBe(seen.at(-1));
        seen.push(...data.slice(1));
      }
      expect(seen).toEqual([...ids].reverse());
    });

    it('afterMessage with sortOrder=asc pages oldest first from the anchor', async () => {
      const r = await alice.get(`/rooms/${roomId}/messages/v3?limit=3&afterMessage=${ids[2]}&sortOrder=asc`);
      expect(r.body.result.data.map((m: { _id: string }) => m._id)).toEqual([ids[2], ids[3], ids[4]]);
      expect(code(await alice.get(`/rooms/${roomId}/messages/v3?beforeMessage=nope`))).toBe('MESSAGE_NOT_FOUND');
    });

    it('only members send or read history', async () => {
      expect(code(await carol.post(`/rooms/${roomId}/message`, { message: 'let me in' }))).toBe('NOT_ROOM_MEMBER');
      expect(code(await carol.get(`/rooms/${roomId}/messages/v3`))).toBe('NOT_ROOM_MEMBER');
      expect((await alice.get(`/rooms/${roomId}/messages/v3`)).body.result.totalCount).toBe(8);
    });

    it('edit with _id by the sender only; editedAt set, same _id', async () => {
      const edited = await alice.post(`/rooms/${roomId}/message`, { _id: ids[0], message: 'm1 (edited)' });
      expect(edited.body.result).toMatchObject({ _id: ids[0], message: 'm1 (edited)', editedAt: expect.any(String) });
      expect(code(await bob.post(`/rooms/${roomId}/message`, { _id: ids[0], message: 'not yours' }))).toBe('NOT_MESSAGE_SENDER');
      const h = await alice.get(`/rooms/${roomId}/messages/v3?limit=100`);
      expect(h.body.result.totalCount).toBe(8);
      expect(h.body.result.data.at(-1).message).toBe('m1 (edited)');
    });

    it('POST /messages sends as any existing user (API key)', async () => {
      const r = await adm.post('/messages', { room: roomId, sender: 'bob', message: 'from admin', messageType: 'text' });
      expect(r.body.result).toMatchObject({ message: 'from admin', sender: expect.objectContaining({ id: 'bob' }) });
      ids.push(r.body.result._id);
      expect(code(await adm.post('/messages', { room: roomId, sender: 'ghost', message: 'x' }))).toBe('CLIENT_NOT_FOUND');
      expect(code(await adm.post('/messages', { room: 'nope', sender: 'bob', message: 'x' }))).toBe('ROOM_NOT_FOUND');
    });

    it('unread counts, lastRead and the badge', async () => {
      // alice sent the message before bob's admin-sent one: she has 1 unread in this room.
      const room = await alice.get(`/rooms/${roomId}`);
      expect(room.body.result.unread).toBe(1);
      const before = (await alice.get('/me/badge')).body.result.badge;
      const read = await alice.put(`/rooms/${roomId}/lastRead`, { message: ids.at(-1) });
      expect(read.body.result).toEqual({ client: 'alice', lastRead: ids.at(-1), badge: 0 });
      expect((await alice.get('/me/badge')).body.result.badge).toBe(before - 1);
      expect((await alice.get(`/rooms/${roomId}`)).body.result.memberProperties).toContainEqual(
        expect.objectContaining({ client: 'alice', lastRead: ids.at(-1) }),
      );
      expect(code(await alice.put(`/rooms/${roomId}/lastRead`, { message: 'nope' }))).toBe('MESSAGE_NOT_FOUND');
      expect(code(await carol.put(`/rooms/${roomId}/lastRead`, { message: ids[0] }))).toBe('NOT_ROOM_MEMBER');
    });
  });
});
