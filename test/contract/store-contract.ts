import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppRecord, MessageRecord, OutboxItem, RoomRecord, UserRecord } from '../../src/core/models.js';
import { OUTBOX_KEEP_SETTLED, OUTBOX_PRUNE_EVERY, type Store, type UserFilter } from '../../src/store/store.js';

/**
 * The behaviour every Store must have. The memory store runs it now; the Redis store must
 * pass the same suite.
 */
export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    const A = 'app-a';
    const B = 'app-b';
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    const app = (id: string, apiKeyHash = `hash-${id}`): AppRecord => ({
      id, name: id, domains: [], apiKeyHash, signingSecret: 's', clientKey: null, createdAt: 1,
    });
    const user = (id: string): UserRecord => ({ id, nickname: id, custom: { color: 'red' }, createdAt: 1, updatedAt: 1 });
    const room = (id: string, members: string[]): RoomRecord => ({
      id, roomType: 'group', managers: [], members,
      memberState: Object.fromEntries(members.map((m) => [m, { joinedAt: 1 }])),
      roomTags: [], status: 1, systemMessage: false, lastActivityAt: 1, createdAt: 1, updatedAt: 1,
    });
    let clock = 1000;
    const message = (id: string, roomId: string, sender = 'u1'): MessageRecord => ({
      id, room: roomId, sender, messageType: 'text', message: id, fields: {}, createdAt: ++clock, updatedAt: clock,
    });

    it('stores, finds and deletes applications, by id and by API key hash', async () => {
      await store.putApp(app(A));
      await store.putApp(app(B));
      expect((await store.getApp(A))?.name).toBe(A);
      expect((await store.getAppByApiKeyHash(`hash-${B}`))?.id).toBe(B);
      expect(await store.getAppByApiKeyHash('nope')).toBeUndefined();
      expect((await store.listApps()).map((a) => a.id).sort()).toEqual([A, B]);
      expect(await store.deleteApp(A)).toBe(true);
      expect(await store.deleteApp(A)).toBe(false);
      expect(await store.getApp(A)).toBeUndefined();
    });

    it('returns copies: mutating a result never changes what is stored', async () => {
      await store.putApp(app(A));
      const got = (await store.getApp(A))!;
      got.name = 'changed';
      expect((await store.getApp(A))!.name).toBe(A);
      await store.putUser(A, user('u1'));
      const u = (await store.getUser(A, 'u1'))!;
      u.custom.color = 'blue';
      expect((await store.getUser(A, 'u1'))!.custom.color).toBe('red');
    });

    it('keeps a __proto__ key in user data as data', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      const extra = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
      await store.addMessage(A, { ...message('m1', 'r1'), fields: { extra } });
      const got = (await store.getMessage(A, 'm1'))!.fields.extra as Record<string, unknown>;
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
      expect((got as { polluted?: boolean }).polluted).toBeUndefined();
      expect(JSON.stringify(got)).toBe('{"__proto__":{"polluted":true},"ok":1}');
    });

    it('keeps applications apart', async () => {
      await store.putUser(A, user('u1'));
      expect(await store.getUser(B, 'u1')).toBeUndefined();
      await store.createRoom(A, room('r1', ['u1']));
      expect(await store.getRoom(B, 'r1')).toBeUndefined();
      expect(await store.userRoomIds(B, 'u1')).toEqual([]);
    });

    it('deleting an application removes what it owns', async () => {
      await store.putApp(app(A));
      await store.putUser(A, user('u1'));
      await store.createRoom(A, room('r1', ['u1']));
      await store.deleteApp(A);
      expect(await store.getUser(A, 'u1')).toBeUndefined();
      expect(await store.getRoom(A, 'r1')).toBeUndefined();
    });

    it('lists users by a filter: ids, exact values, literal text anywhere, at the start or end, whole, in any case (Unicode)', async () => {
      const u = (id: string, createdAt: number, nickname?: string, description?: string): UserRecord => ({
        id, createdAt, updatedAt: 1, custom: {}, ...(nickname === undefined ? {} : { nickname }), ...(description === undefined ? {} : { description }),
      });
      await store.putUser(A, u('u1', 1, 'ÉLODIE Martin', 'likes 設計'));
      await store.putUser(A, u('u2', 2, 'élodie', 'x.y*z'));
      await store.putUser(A, u('u3', 3, undefined, 'no nickname'));
      await store.putUser(A, u('u4', 4, 'Bob'));
      await store.putUser(B, u('u9', 1, 'élodie'));
      const ids = async (filter: UserFilter, skip = 0, limit = 10) => {
        const r = await store.listUsers(A, skip, limit, filter);
        return { total: r.total, ids: r.users.map((x) => x.id) };
      };
      const text = (value: string, at: 'anywhere' | 'start' | 'end' | 'whole', foldCase = false) => ({ value, at, foldCase });
      expect(await ids({ all: [{ field: 'id', oneOf: ['u3', 'u1', 'zz'] }] })).toEqual({ total: 2, ids: ['u1', 'u3'] });
      expect(await ids({ all: [{ field: 'id', oneOf: [] }] })).toEqual({ total: 0, ids: [] });
      expect(await ids({ all: [{ field: 'nickname', oneOf: ['élodie'] }] })).toEqual({ total: 1, ids: ['u2'] });
      // Without a nickname, the id stands for it.
      expect(await ids({ all: [{ field: 'nickname', oneOf: ['u3'] }] })).toEqual({ total: 1, ids: ['u3'] });
      expect(await ids({ all: [{ field: 'nickname', text: text('élodie', 'anywhere', true) }] })).toEqual({ total: 2, ids: ['u1', 'u2'] });
      expect(await ids({ all: [{ field: 'nickname', text: text('élodie', 'anywhere') }] })).toEqual({ total: 1, ids: ['u2'] });
      expect(await ids({ all: [{ field: 'nickname', text: text('élodie', 'start', true) }] })).toEqual({ total: 2, ids: ['u1', 'u2'] });
      expect(await ids({ all: [{ field: 'nickname', text: text('martin', 'end', true) }] })).toEqual({ total: 1, ids: ['u1'] });
      expect(await ids({ all: [{ field: 'nickname', text: text('Martin', 'start') }] })).toEqual({ total: 0, ids: [] });
      expect(await ids({ all: [{ field: 'nickname', text: text('élodie', 'whole', true) }] })).toEqual({ total: 1, ids: ['u2'] });
      expect(await ids({ all: [{ field: 'description', text: text('設計', 'anywhere') }] })).toEqual({ total: 1, ids: ['u1'] });
      expect(await ids({ all: [{ field: 'description', text: text('x.y*z', 'whole') }] })).toEqual({ total: 1, ids: ['u2'] });
      expect(await ids({ all: [{ field: 'description', text: text('', 'anywhere') }] })).toEqual({ total: 3, ids: ['u1', 'u2', 'u3'] });
      // Every condition of `all`, one of `any` (the dashboard's search on id or nickname).
      const search = (value: string): UserFilter => ({ all: [], any: [{ field: 'id', text: text(value, 'anywhere', true) }, { field: 'nickname', text: text(value, 'anywhere', true) }] });
      expect(await ids(search('u3'))).toEqual({ total: 1, ids: ['u3'] });
      expect(await ids(search('o'))).toEqual({ total: 3, ids: ['u1', 'u2', 'u4'] });
      expect(await ids(search('o'), 1, 1)).toEqual({ total: 3, ids: ['u2'] });
      expect(await ids({ ...search('o'), all: [{ field: 'id', oneOf: ['u4', 'u3'] }] })).toEqual({ total: 1, ids: ['u4'] });
    });

    it('lists user groups apart, oldest first, as users become and stop being groups', async () => {
      const group = (id: string, createdAt: number): UserRecord => ({ ...user(id), createdAt, group: { members: ['u1'] } });
      await store.putUser(A, user('u1'));
      await store.putUser(A, group('g2', 20));
      await store.putUser(A, group('g1', 10));
      await store.putUser(B, group('gb', 5));
      await store.putUser(A, user('g3'));
      await store.updateUser(A, 'g3', (u) => ({ ...u, createdAt: 30, group: { members: [] } }));
      const ids = async (limit = 10) => (await store.listGroups(A, limit)).users.map((u) => u.id);
      expect(await ids()).toEqual(['g1', 'g2', 'g3']);
      expect(await store.listGroups(A, 1)).toMatchObject({ total: 3, users: [{ id: 'g1', group: { members: ['u1'] } }] });
      await store.updateUser(A, 'g2', ({ group: _g, ...u }) => u);
      await store.putUser(A, user('g1'));
      expect(await ids()).toEqual(['g3']);
      await store.deleteUser(A, 'g3');
      expect(await store.listGroups(A, 10)).toEqual({ total: 0, users: [] });
      expect((await store.listGroups(B, 10)).users.map((u) => u.id)).toEqual(['gb']);
    });

    it('lists users with skip and limit, and gets several in order', async () => {
      for (const id of ['u1', 'u2', 'u3']) await store.putUser(A, user(id));
      const page = await store.listUsers(A, 1, 1);
      expect(page.total).toBe(3);
      expect(page.users).toHaveLength(1);
      const many = await store.getUsers(A, ['u3', 'zz', 'u1']);
      expect(many.map((u) => u?.id)).toEqual(['u3', undefined, 'u1']);
      expect(await store.deleteUser(A, 'u2')).toBe(true);
      expect(await store.getUser(A, 'u2')).toBeUndefined();
    });

    it('stores tokens by hash and deletes one or all of a user', async () => {
      const t = (hash: string, userId: string) => ({ hash, userId, expiresAt: 9e15, issued: true, createdAt: 1 });
      await store.putToken(A, t('h1', 'u1'));
      await store.putToken(A, t('h2', 'u1'));
      await store.putToken(A, t('h3', 'u2'));
      expect((await store.getToken(A, 'h1'))?.userId).toBe('u1');
      expect((await store.listTokens(A, 'u1')).map((x) => x.hash).sort()).toEqual(['h1', 'h2']);
      expect(await store.listTokens(A, 'nobody')).toEqual([]);
      expect((await store.deleteTokens(A, 'u1', 'h1')).map((x) => x.hash)).toEqual(['h1']);
      expect((await store.listTokens(A, 'u1')).map((x) => x.hash)).toEqual(['h2']);
      expect(await store.deleteTokens(A, 'u2', 'h1')).toEqual([]);
      expect((await store.deleteTokens(A, 'u1')).map((x) => x.hash)).toEqual(['h2']);
      expect(await store.getToken(A, 'h2')).toBeUndefined();
      expect(await store.getToken(A, 'h3')).toBeDefined();
    });

    it('creates a room once and indexes its members', async () => {
      expect(await store.createRoom(A, room('r1', ['u1', 'u2']))).toBe(true);
      expect(await store.createRoom(A, room('r1', ['u3']))).toBe(false);
      expect((await store.getRoom(A, 'r1'))?.members).toEqual(['u1', 'u2']);
      expect(await store.userRoomIds(A, 'u1')).toEqual(['r1']);
      expect(await store.userRoomIds(A, 'u3')).toEqual([]);
      expect(await store.countRooms(A)).toBe(1);
      expect(await store.countRooms(B)).toBe(0);
    });

    it('getRoomForUser gives the room with only that user\'s member state', async () => {
      const r = room('r1', ['u1', 'u2', 'u3']);
      r.memberState.u2 = { joinedAt: 2, role: 'admin' };
      r.banned = { u3: { by: 'u2', at: 4 } };
      r.managers = ['u2'];
      await store.createRoom(A, r);
      await store.addMessage(A, message('m1', 'r1', 'u2'));
      const full = (await store.getRoom(A, 'r1'))!;
      const forU2 = (await store.getRoomForUser(A, 'r1', 'u2'))!;
      const { memberState: _all, ...rest } = full;
      expect(forU2).toEqual({ ...rest, viewer: 'u2', member: { joinedAt: 2, role: 'admin', lastRead: 'm1' } });
      expect('memberState' in forU2).toBe(false);
      const stranger = (await store.getRoomForUser(A, 'r1', 'stranger'))!;
      expect(stranger.viewer).toBe('stranger');
      expect(stranger.member).toBeUndefined();
      // An inherited property name is not a member.
      expect((await store.getRoomForUser(A, 'r1', 'constructor'))!.member).toBeUndefined();
      expect(await store.getRoomForUser(A, 'nope', 'u1')).toBeUndefined();
      forU2.members.push('x');
      forU2.member!.role = 'member';
      expect((await store.getRoom(A, 'r1'))!).toEqual(full);
    });

    it('updateRoom changes the room and keeps the member index in step', async () => {
      await store.createRoom(A, room('r1', ['u1', 'u2']));
      const updated = await store.updateRoom(A, 'r1', (r) => {
        r.members = ['u2', 'u3'];
        r.memberState = { u2: { joinedAt: 1 }, u3: { joinedAt: 2 } };
        r.name = 'renamed';
        return r;
      });
      expect(updated?.name).toBe('renamed');
      expect(await store.userRoomIds(A, 'u1')).toEqual([]);
      expect(await store.userRoomIds(A, 'u3')).toEqual(['r1']);
      expect(await store.updateRoom(A, 'r1', () => undefined)).toMatchObject({ name: 'renamed' });
      expect(await store.updateRoom(A, 'missing', (r) => r)).toBeUndefined();
      const rooms = await store.getRooms(A, ['r1', 'missing']);
      expect(rooms.map((r) => r?.id)).toEqual(['r1', undefined]);
    });

    it('deleting a room removes its messages and index entries', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, message('m1', 'r1'));
      expect(await store.deleteRoom(A, 'r1')).toBe(true);
      expect(await store.getMessage(A, 'm1')).toBeUndefined();
      expect(await store.userRoomIds(A, 'u1')).toEqual([]);
      expect(await store.deleteRoom(A, 'r1')).toBe(false);
      expect(await store.countRooms(A)).toBe(0);
    });

    it('addMessage appends, moves the last-message pointer and marks it read for the sender', async () => {
      await store.createRoom(A, room('r1', ['u1', 'u2']));
      await store.addMessage(A, message('m1', 'r1', 'u1'));
      const r = (await store.getRoom(A, 'r1'))!;
      expect(r.lastMessageId).toBe('m1');
      expect(r.memberState.u1!.lastRead).toBe('m1');
      expect(r.memberState.u2!.lastRead).toBeUndefined();
      expect(await store.countMessages(A, 'r1')).toBe(1);
    });

    it('addMessage is insert-only: an existing id (in any room) is refused and nothing changes', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.createRoom(A, room('r2', ['u2']));
      expect(await store.addMessage(A, message('m1', 'r1'))).toBe(true);
      const original = await store.getMessage(A, 'm1');
      expect(await store.addMessage(A, { ...message('m1', 'r2', 'u2'), message: 'overwrite' })).toBe(false);
      expect(await store.addMessage(A, { ...message('m1', 'r1'), message: 'again' })).toBe(false);
      expect(await store.getMessage(A, 'm1')).toEqual(original);
      expect(await store.countMessages(A, 'r1')).toBe(1);
      expect(await store.countMessages(A, 'r2')).toBe(0);
      expect((await store.getRoom(A, 'r2'))!.lastMessageId).toBeUndefined();
      expect(await store.clearMessages(A, 'r2')).toBe(0);
      expect(await store.getMessage(A, 'm1')).toEqual(original);
    });

    it('member lookups by user id see only own entries (Object.prototype names are not members)', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, message('m1', 'r1'));
      for (const id of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
        const seen = (await store.getRoomForUser(A, 'r1', id))!;
        expect(seen.member).toBeUndefined();
        expect(await store.setLastRead(A, 'r1', id, 'm1')).toBe(false);
        expect(await store.addMessage(A, message(`from-${id}`, 'r1', id))).toBe(true);
      }
      expect(({} as Record<string, unknown>).lastRead).toBeUndefined();
      expect(Object.keys((await store.getRoom(A, 'r1'))!.memberState)).toEqual(['u1']);
    });

    it('pages history from either end and from an anchor, anchor included when asked', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      for (const id of ['m1', 'm2', 'm3', 'm4', 'm5']) await store.addMessage(A, message(id, 'r1'));
      const ids = (ms: MessageRecord[] | undefined) => ms?.map((m) => m.id);
      expect(ids(await store.listMessages(A, 'r1', { direction: 'older', includeAnchor: false, limit: 2 }))).toEqual(['m5', 'm4']);
      expect(ids(await store.listMessages(A, 'r1', { anchor: 'm3', direction: 'older', includeAnchor: true, limit: 2 }))).toEqual(['m3', 'm2']);
      expect(ids(await store.listMessages(A, 'r1', { anchor: 'm3', direction: 'older', includeAnchor: false, limit: 5 }))).toEqual(['m2', 'm1']);
      expect(ids(await store.listMessages(A, 'r1', { anchor: 'm3', direction: 'newer', includeAnchor: true, limit: 2 }))).toEqual(['m3', 'm4']);
      expect(ids(await store.listMessages(A, 'r1', { direction: 'newer', includeAnchor: false, limit: 2 }))).toEqual(['m1', 'm2']);
      expect(await store.listMessages(A, 'r1', { anchor: 'nope', direction: 'older', includeAnchor: true, limit: 2 })).toBeUndefined();
    });

    it('sets a member\'s last-read message, and only a member\'s', async () => {
      await store.createRoom(A, room('r1', ['u1', 'u2']));
      await store.addMessage(A, message('m1', 'r1', 'u2'));
      expect(await store.setLastRead(A, 'r1', 'u1', 'm1')).toBe(true);
      expect((await store.getRoom(A, 'r1'))!.memberState.u1!.lastRead).toBe('m1');
      expect(await store.setLastRead(A, 'r1', 'stranger', 'm1')).toBe(false);
      expect((await store.getRoom(A, 'r1'))!.memberState.stranger).toBeUndefined();
      expect(await store.setLastRead(A, 'nope', 'u1', 'm1')).toBe(false);
    });

    it('counts messages after a given one', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      for (const id of ['m1', 'm2', 'm3']) await store.addMessage(A, message(id, 'r1'));
      expect(await store.countMessagesAfter(A, 'r1', undefined)).toBe(3);
      expect(await store.countMessagesAfter(A, 'r1', 'm1')).toBe(2);
      expect(await store.countMessagesAfter(A, 'r1', 'm3')).toBe(0);
    });

    it('counts messages created or changed after a time (GET /rooms/:id/count)', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.createRoom(A, room('r2', ['u1']));
      const [m1, m2, m3] = [message('m1', 'r1'), message('m2', 'r1'), message('m3', 'r1')];
      for (const m of [m1, m2, m3]) await store.addMessage(A, m);
      await store.addMessage(A, message('elsewhere', 'r2'));
      expect(await store.countMessagesChangedSince(A, 'r1', m1.createdAt - 1)).toBe(3);
      expect(await store.countMessagesChangedSince(A, 'r1', m2.createdAt)).toBe(1);
      // An edit moves updatedAt: the oldest message counts again.
      await store.updateMessage(A, 'm1', (m) => ({ ...m, message: 'edited', updatedAt: m3.createdAt + 10 }));
      expect(await store.countMessagesChangedSince(A, 'r1', m2.createdAt)).toBe(2);
      expect(await store.countMessagesChangedSince(A, 'r1', m3.createdAt + 10)).toBe(0);
      expect(await store.countMessagesChangedSince(A, 'nope', 0)).toBe(0);
    });

    it('counts messages after a given one leaving out blocked senders', async () => {
      await store.createRoom(A, room('r1', ['u1', 'u2', 'u3']));
      for (const [id, sender] of [['m1', 'u1'], ['m2', 'u2'], ['m3', 'u3'], ['m4', 'u2']] as const) await store.addMessage(A, message(id, 'r1', sender));
      await store.addMessage(A, { ...message('m5', 'r1'), sender: undefined });
      expect(await store.countMessagesAfter(A, 'r1', undefined, ['u2'])).toBe(3);
      expect(await store.countMessagesAfter(A, 'r1', 'm1', ['u2'])).toBe(2);
      expect(await store.countMessagesAfter(A, 'r1', 'm1', ['u2', 'u3'])).toBe(1);
      expect(await store.countMessagesAfter(A, 'r1', 'm5', ['u2'])).toBe(0);
      expect(await store.countMessagesAfter(A, 'r1', 'm1', [])).toBe(4);
    });

    it('deleting a member\'s last-read message keeps their unread count', async () => {
      await store.createRoom(A, room('r1', ['u1', 'u2', 'u3']));
      for (const id of ['m1', 'm2', 'm3', 'm4']) await store.addMessage(A, message(id, 'r1', 'u3'));
      await store.setLastRead(A, 'r1', 'u1', 'm2');
      await store.setLastRead(A, 'r1', 'u2', 'm1');
      expect(await store.deleteMessage(A, 'r1', 'm2')).toBe(true);
      let r = (await store.getRoom(A, 'r1'))!;
      expect(r.memberState.u1!.lastRead).toBe('m1');
      expect(await store.countMessagesAfter(A, 'r1', r.memberState.u1!.lastRead)).toBe(2);
      expect(await store.deleteMessage(A, 'r1', 'm1')).toBe(true);
      r = (await store.getRoom(A, 'r1'))!;
      expect(r.memberState.u1!.lastRead).toBeUndefined();
      expect(r.memberState.u2!.lastRead).toBeUndefined();
      expect(r.memberState.u3!.lastRead).toBe('m4');
      expect(await store.countMessagesAfter(A, 'r1', r.memberState.u1!.lastRead)).toBe(2);
    });

    it('adding a message to a missing room writes nothing and says so (no crash)', async () => {
      expect(await store.addMessage(A, message('m1', 'gone'))).toBe(false);
      expect(await store.getMessage(A, 'm1')).toBeUndefined();
    });

    it('replaces a message only in its own room', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, message('m1', 'r1'));
      expect(await store.replaceMessage(A, { ...message('m1', 'r1'), message: 'edited' })).toBe(true);
      expect((await store.getMessage(A, 'm1'))?.message).toBe('edited');
      expect(await store.replaceMessage(A, { ...message('m1', 'r2') })).toBe(false);
      expect(await store.replaceMessage(A, message('m9', 'r1'))).toBe(false);
    });

    it('deletes one message or all of a room, keeping the last-message pointer right', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      for (const id of ['m1', 'm2', 'm3']) await store.addMessage(A, message(id, 'r1'));
      expect(await store.deleteMessage(A, 'r1', 'm3')).toBe(true);
      expect(await store.deleteMessage(A, 'r1', 'm3')).toBe(false);
      expect(await store.deleteMessage(A, 'r2', 'm1')).toBe(false);
      expect(await store.getMessage(A, 'm3')).toBeUndefined();
      expect((await store.getRoom(A, 'r1'))!.lastMessageId).toBe('m2');
      expect(await store.countMessages(A, 'r1')).toBe(2);
      expect(await store.countMessagesAfter(A, 'r1', 'm1')).toBe(1);
      const page = await store.listMessages(A, 'r1', { direction: 'older', includeAnchor: false, limit: 10 });
      expect(page!.map((m) => m.id)).toEqual(['m2', 'm1']);
      expect(await store.clearMessages(A, 'r1')).toBe(2);
      expect(await store.countMessages(A, 'r1')).toBe(0);
      expect(await store.getMessage(A, 'm1')).toBeUndefined();
      expect((await store.getRoom(A, 'r1'))!.lastMessageId).toBeUndefined();
      await store.addMessage(A, message('m4', 'r1'));
      expect((await store.getRoom(A, 'r1'))!.lastMessageId).toBe('m4');
    });

    it('updateUser is an atomic read-modify-write: concurrent changes are all kept', async () => {
      expect(await store.updateUser(A, 'nobody', (u) => u)).toBeUndefined();
      await store.putUser(A, { ...user('u1'), mute: [] });
      // Each change adds its own room to the mute list; lost updates would drop some.
      const rooms = Array.from({ length: 30 }, (_, i) => `r${i}`);
      await Promise.all(rooms.map((r) => store.updateUser(A, 'u1', (u) => ({ ...u, mute: [...(u.mute ?? []), r] }))));
      expect((await store.getUser(A, 'u1'))!.mute!.slice().sort()).toEqual(rooms.slice().sort());
      // The change gets a copy; undefined leaves the record; the id cannot be changed.
      const same = await store.updateUser(A, 'u1', (u) => {
        u.nickname = 'scribbled';
        return undefined;
      });
      expect(same!.nickname).toBe('u1');
      const renamed = await store.updateUser(A, 'u1', (u) => ({ ...u, id: 'other', nickname: 'n' }));
      expect(renamed).toMatchObject({ id: 'u1', nickname: 'n' });
      expect(await store.getUser(A, 'other')).toBeUndefined();
      expect((await store.getUser(A, 'u1'))!.nickname).toBe('n');
    });

    it('updateApp is an atomic read-modify-write and keeps the API key index in step', async () => {
      expect(await store.updateApp(A, (a) => a)).toBeUndefined();
      await store.putApp({ ...app(A), domains: [] });
      const hosts = Array.from({ length: 30 }, (_, i) => `h${i}.example`);
      await Promise.all(hosts.map((h) => store.updateApp(A, (a) => ({ ...a, domains: [...a.domains, h] }))));
      expect((await store.getApp(A))!.domains.slice().sort()).toEqual(hosts.slice().sort());
      const rotated = await store.updateApp(A, (a) => ({ ...a, apiKeyHash: 'rotated' }));
      expect(rotated!.apiKeyHash).toBe('rotated');
      expect((await store.getAppByApiKeyHash('rotated'))?.id).toBe(A);
      expect(await store.getAppByApiKeyHash(`hash-${A}`)).toBeUndefined();
      expect((await store.updateApp(A, () => undefined))!.domains.length).toBe(30);
    });

    it('updateMessage is an atomic read-modify-write of a message still in its room', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, message('m1', 'r1'));
      const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
      await Promise.all(keys.map((k) => store.updateMessage(A, 'm1', (m) => ({ ...m, fields: { ...m.fields, [k]: true } }))));
      expect(Object.keys((await store.getMessage(A, 'm1'))!.fields).sort()).toEqual(keys.slice().sort());
      const moved = await store.updateMessage(A, 'm1', (m) => ({ ...m, room: 'r2', message: 'edited' }));
      expect(moved).toMatchObject({ id: 'm1', room: 'r1', message: 'edited' });
      expect((await store.listMessages(A, 'r1', { direction: 'older', includeAnchor: false, limit: 5 }))!.map((m) => m.message)).toEqual(['edited']);
      await store.deleteMessage(A, 'r1', 'm1');
      expect(await store.updateMessage(A, 'm1', (m) => m)).toBeUndefined();
      expect(await store.getMessage(A, 'm1')).toBeUndefined();
    });

    it('round-trips every optional field of users, rooms and messages', async () => {
      const fullUser: UserRecord = { ...user('u9'), avatarUrl: 'a', description: 'd', mute: ['r1'], lastLoginAt: 3, lastActiveAt: 4, custom: { nested: { deep: [1, 'x', null] } } };
      await store.putUser(A, fullUser);
      expect(await store.getUser(A, 'u9')).toEqual(fullUser);
      const fullRoom: RoomRecord = {
        ...room('r9', ['u1', 'u2']), name: 'n', cover: 'c', description: 'd', owner: 'u1', managers: ['u2'],
        memberState: { u1: { joinedAt: 1, role: 'admin', lastRead: 'm0' }, u2: { joinedAt: 2 } },
        roomTags: ['t'], extParams: '{"a":1}', status: 0, systemMessage: true, pinnedMessageId: 'm0',
        banned: { u2: { by: 'u1', at: 9 } },
      };
      await store.createRoom(A, fullRoom);
      expect(await store.getRoom(A, 'r9')).toEqual(fullRoom);
      const fullMessage: MessageRecord = { ...message('m9', 'r9'), sender: undefined, fields: { extra: { k: [1] }, mentions: ['u2'], reply: 'm0' }, editedAt: 77 };
      await store.addMessage(A, fullMessage);
      expect(await store.getMessage(A, 'm9')).toEqual(fullMessage);
    });

    it('stores personal blocks per blocker', async () => {
      await store.putBlock(A, { blocker: 'u1', blockee: 'u2', createdAt: 5 });
      await store.putBlock(A, { blocker: 'u1', blockee: 'u3', createdAt: 6 });
      expect(await store.getBlock(A, 'u1', 'u2')).toEqual({ blocker: 'u1', blockee: 'u2', createdAt: 5 });
      expect(await store.getBlock(A, 'u2', 'u1')).toBeUndefined();
      expect((await store.listBlocks(A, 'u1')).map((b) => b.blockee).sort()).toEqual(['u2', 'u3']);
      expect(await store.listBlocks(B, 'u1')).toEqual([]);
      expect([...(await store.blockersAmong(A, 'u2', ['u1', 'u3', 'u2', 'u1']))]).toEqual(['u1']);
      expect((await store.blockersAmong(B, 'u2', ['u1'])).size).toBe(0);
      expect((await store.blockersAmong(A, 'u2', [])).size).toBe(0);
      expect(await store.deleteBlock(A, 'u1', 'u2')).toBe(true);
      expect(await store.deleteBlock(A, 'u1', 'u2')).toBe(false);
      expect((await store.listBlocks(A, 'u1')).map((b) => b.blockee)).toEqual(['u3']);
    });

    it('stores file metadata', async () => {
      const file = { id: 'f1', bucket: 'chatserver-upload', filename: 'a.png', mimetype: 'image/png', length: 3, md5: 'x', client: 'u1', room: 'r1', extra: { roomId: 'r1' }, uploadedAt: 7 };
      await store.putFile(A, file);
      expect(await store.getFile(A, 'f1')).toEqual(file);
      expect(await store.getFile(B, 'f1')).toBeUndefined();
      expect(await store.deleteFile(A, 'f1')).toBe(true);
      expect(await store.getFile(A, 'f1')).toBeUndefined();
    });

    it('listAppMessages: across rooms, newest first, by time window and batch', async () => {
      await store.createRoom(A, room('xr1', ['u1']));
      await store.createRoom(A, room('xr2', ['u1']));
      const m = (id: string, room: string, at: number, batchID?: string) => ({
        id, room, sender: 'u1', messageType: 'text', message: id, fields: batchID ? { batchID } : {}, createdAt: at, updatedAt: at,
      });
      await store.addMessage(A, m('x1', 'xr1', 1000));
      await store.addMessage(A, m('x2', 'xr2', 2000, 'b1'));
      await store.addMessage(A, m('x3', 'xr1', 3000, 'b1'));
      // Stored last, created earlier (another node's clock): listed by creation time.
      await store.addMessage(A, m('x0', 'xr2', 1200));
      const all = await store.listAppMessages(A, { from: 1000, limit: 10 });
      expect(all.messages.filter((x) => x.id.startsWith('x')).map((x) => x.id)).toEqual(['x3', 'x2', 'x0', 'x1']);
      expect((await store.listAppMessages(A, { from: 1000, limit: 2 })).messages.map((x) => x.id)).toEqual(['x3', 'x2']);
      // An edit keeps its place and batch.
      await store.updateMessage(A, 'x2', (x) => ({ ...x, message: 'edited', updatedAt: 9000 }));
      expect((await store.listAppMessages(A, { batchID: 'b1', limit: 10 })).messages.map((x) => x.id)).toEqual(['x3', 'x2']);
      await store.deleteMessage(A, 'xr2', 'x0');
      const window = await store.listAppMessages(A, { from: 1500, to: 2500, limit: 10 });
      expect(window.messages.map((x) => x.id)).toEqual(['x2']);
      expect(window.total).toBe(1);
      const batch = await store.listAppMessages(A, { batchID: 'b1', limit: 1 });
      expect({ total: batch.total, ids: batch.messages.map((x) => x.id) }).toEqual({ total: 2, ids: ['x3'] });
      expect((await store.listAppMessages(B, { batchID: 'b1', limit: 10 })).total).toBe(0);
    });

    it('user-deleted messages are a set per user and room', async () => {
      expect(await store.listUserDeletedMessages(A, 'u1', 'r1')).toEqual([]);
      await store.addUserDeletedMessages(A, 'u1', 'r1', ['m1', 'm2']);
      await store.addUserDeletedMessages(A, 'u1', 'r1', ['m2', 'm3']);
      await store.addUserDeletedMessages(A, 'u1', 'r1', []);
      expect((await store.listUserDeletedMessages(A, 'u1', 'r1')).sort()).toEqual(['m1', 'm2', 'm3']);
      expect(await store.listUserDeletedMessages(A, 'u1', 'r2')).toEqual([]);
      expect(await store.listUserDeletedMessages(A, 'u2', 'r1')).toEqual([]);
      expect(await store.listUserDeletedMessages(B, 'u1', 'r1')).toEqual([]);
      // A user id with ':' cannot collide with another (user, room) pair.
      await store.addUserDeletedMessages(A, 'a:b', 'c', ['x']);
      expect(await store.listUserDeletedMessages(A, 'a', 'b:c')).toEqual([]);
    });

    it('invitations: put, list by room or invitee, delete some or all', async () => {
      await store.putInvitations(A, [
        { room: 'r1', invitee: 'u1', inviter: 'o', createdAt: 1 },
        { room: 'r1', invitee: 'u2', createdAt: 2 },
        { room: 'r2', invitee: 'u1', inviter: 'o', createdAt: 3 },
      ]);
      expect(await store.listInvitations(A, { room: 'r1' })).toEqual([
        { room: 'r1', invitee: 'u1', inviter: 'o', createdAt: 1 },
        { room: 'r1', invitee: 'u2', createdAt: 2 },
      ]);
      expect((await store.listInvitations(A, { invitee: 'u1' })).map((i) => i.room)).toEqual(['r1', 'r2']);
      expect(await store.listInvitations(B, { invitee: 'u1' })).toEqual([]);
      await store.putInvitations(A, [{ room: 'r1', invitee: 'u1', inviter: 'p', createdAt: 5 }]);
      expect((await store.listInvitations(A, { room: 'r1' })).find((i) => i.invitee === 'u1')?.inviter).toBe('p');
      expect(await store.deleteInvitations(A, 'r1', ['u1', 'nobody'])).toEqual([{ room: 'r1', invitee: 'u1', inviter: 'p', createdAt: 5 }]);
      expect(await store.deleteInvitations(A, 'r1', ['u1'])).toEqual([]);
      expect((await store.listInvitations(A, { invitee: 'u1' })).map((i) => i.room)).toEqual(['r2']);
      expect((await store.deleteInvitations(A, 'r2')).map((i) => i.invitee)).toEqual(['u1']);
      expect(await store.listInvitations(A, { invitee: 'u1' })).toEqual([]);
      expect(await store.deleteInvitations(A, 'r1')).toEqual([{ room: 'r1', invitee: 'u2', createdAt: 2 }]);
      expect(await store.listInvitations(A, { room: 'r1' })).toEqual([]);
    });

    it('shareFile adds rooms to a file as a set, survives putFile, and goes with the file', async () => {
      const file = { id: 'f2', bucket: 'b', filename: 'a.png', mimetype: 'image/png', length: 3, md5: 'x', client: 'u1', extra: {}, uploadedAt: 7 };
      expect(await store.shareFile(A, 'f2', 'r1')).toBe(false);
      await store.putFile(A, file);
      expect((await store.getFile(A, 'f2'))?.sharedIn ?? []).toEqual([]);
      expect(await store.shareFile(A, 'f2', 'r2')).toBe(true);
      expect(await store.shareFile(A, 'f2', 'r1')).toBe(true);
      expect(await store.shareFile(A, 'f2', 'r2')).toBe(true);
      expect((await store.getFile(A, 'f2'))?.sharedIn?.slice().sort()).toEqual(['r1', 'r2']);
      expect(await store.getFile(B, 'f2')).toBeUndefined();
      await store.putFile(A, { ...file, filename: 'renamed.png' });
      expect((await store.getFile(A, 'f2'))?.sharedIn?.slice().sort()).toEqual(['r1', 'r2']);
      expect(await store.deleteFile(A, 'f2')).toBe(true);
      expect(await store.shareFile(A, 'f2', 'r3')).toBe(false);
      await store.putFile(A, file);
      expect((await store.getFile(A, 'f2'))?.sharedIn ?? []).toEqual([]);
    });

    it('stores per-user preferences', async () => {
      expect(await store.listPrefs(A, 'u1')).toEqual([]);
      await store.putPref(A, 'u1', { key: 'folders-meta', data: [{ key: 'f', name: 'F' }] });
      expect(await store.listPrefs(A, 'u1')).toEqual([{ key: 'folders-meta', data: [{ key: 'f', name: 'F' }] }]);
      expect(await store.deletePref(A, 'u1', 'folders-meta')).toBe(true);
      expect(await store.listPrefs(A, 'u1')).toEqual([]);
    });
    it('group room preferences: an atomic read-modify-write per group and room, listed by group, gone with the room', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.createRoom(A, room('r2', ['u1']));
      // 30 concurrent merges of one record: none is lost.
      await Promise.all(Array.from({ length: 30 }, (_, i) => store.updateGroupRoomPref(A, 'g', 'r1', (p) => ({ ...p, [`k${i}`]: i }))));
      const [first] = await store.listGroupRoomPrefs(A, 'g');
      expect(Object.keys(first!.pref)).toHaveLength(30);
      expect(await store.updateGroupRoomPref(A, 'g', 'r2', (p) => ({ ...p, tags: ['x'] }))).toEqual({ tags: ['x'] });
      await store.updateGroupRoomPref(A, 'other', 'r2', () => ({ folder: 'f' }));
      expect((await store.listGroupRoomPrefs(A, 'g')).map((p) => p.room)).toEqual(['r1', 'r2']);
      expect(await store.listGroupRoomPrefs(B, 'g')).toEqual([]);
      await store.deleteRoom(A, 'r1');
      expect(await store.listGroupRoomPrefs(A, 'g')).toEqual([{ room: 'r2', pref: { tags: ['x'] } }]);
    });

    it('updateRoom records members who leave as having quitted (with their pref, at updatedAt); rejoining or deleting the room clears it', async () => {
      const r = room('r1', ['u1', 'u2', 'u3']);
      r.memberState.u2!.pref = { tags: ['old'] };
      await store.createRoom(A, r);
      await store.updateRoom(A, 'r1', (x) => ({ ...x, members: ['u1'], memberState: { u1: x.memberState.u1! }, updatedAt: 5000 }));
      expect(await store.listQuittedRooms(A, 'u2')).toEqual([{ roomId: 'r1', quittedAt: 5000, pref: { tags: ['old'] } }]);
      expect(await store.listQuittedRooms(A, 'u3')).toEqual([{ roomId: 'r1', quittedAt: 5000, pref: {} }]);
      expect(await store.listQuittedRooms(A, 'u1')).toEqual([]);
      await store.updateRoom(A, 'r1', (x) => ({ ...x, members: ['u1', 'u2'], memberState: { ...x.memberState, u2: { joinedAt: 6000 } }, updatedAt: 6000 }));
      expect(await store.listQuittedRooms(A, 'u2')).toEqual([]);
      expect(await store.listQuittedRooms(B, 'u3')).toEqual([]);
      await store.deleteRoom(A, 'r1');
      expect(await store.listQuittedRooms(A, 'u3')).toEqual([]);
    });

    it('stores push devices per user, type and device id; a token-checked delete spares a replaced token', async () => {
      const d = (userId: string, deviceId: string, token: string) => ({ userId, type: 'fcm' as const, deviceId, token, createdAt: 1 });
      await store.putDevice(A, d('u1', 'phone', 't1'));
      await store.putDevice(A, d('u1', 'tablet', 't2'));
      await store.putDevice(A, d('u2', 'phone', 't3'));
      await store.putDevice(A, d('u1', 'phone', 't4')); // re-subscribed: replaces
      expect((await store.listDevices(A, ['u1', 'u2', 'u1'])).map((x) => x.token).sort()).toEqual(['t2', 't3', 't4']);
      expect(await store.listDevices(B, ['u1'])).toEqual([]);
      expect(await store.deleteDevice(A, 'u1', 'fcm', 'phone', 't1')).toBe(false);
      expect(await store.deleteDevice(A, 'u1', 'fcm', 'phone', 't4')).toBe(true);
      expect(await store.deleteDevice(A, 'u1', 'fcm', 'tablet')).toBe(true);
      expect(await store.deleteDevice(A, 'u1', 'fcm', 'tablet')).toBe(false);
      expect((await store.listDevices(A, ['u1', 'u2'])).map((x) => x.token)).toEqual(['t3']);
      await store.putUser(A, user('u2'));
      await store.deleteUser(A, 'u2');
      expect(await store.listDevices(A, ['u2'])).toEqual([]);
    });

    const item = (appId: string, id: string, nextAt = 0): OutboxItem => ({
      id, appId, kind: 'webhook', payload: { url: 'http://127.0.0.1/x', list: [] }, status: 'pending', attempts: 0, nextAt, createdAt: 1, updatedAt: 1,
    });

    it('enqueues outbox items with a message and with a room change, atomically with them', async () => {
      await store.putApp(app(A));
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, message('m1', 'r1'), [item(A, 'w1')]);
      await store.updateRoom(A, 'r1', (r) => ({ ...r, members: [...r.members, 'u2'], memberState: { ...r.memberState, u2: { joinedAt: 2 } } }), (before, after) => [
        item(A, `w-${before.members.length}-${after.members.length}`),
      ]);
      await store.updateRoom(A, 'r1', () => undefined, () => [item(A, 'never')]);
      const claimed = await store.claimOutbox(10, 10, 1000);
      expect(claimed.map((i) => i.id).sort()).toEqual(['w-1-2', 'w1']);
      expect(claimed[0]!.payload).toEqual({ url: 'http://127.0.0.1/x', list: [] });
    });

    it('enqueues nothing with a message that is not written (an existing id)', async () => {
      await store.putApp(app(A));
      await store.createRoom(A, room('r1', ['u1']));
      expect(await store.addMessage(A, message('m1', 'r1'), [item(A, 'first')])).toBe(true);
      expect(await store.addMessage(A, message('m1', 'r1'), [item(A, 'again')])).toBe(false);
      // The same id twice at once (one group commit): only the written one's items.
      const m2 = message('m2', 'r1');
      expect(await Promise.all([store.addMessage(A, m2, [item(A, 'x1')]), store.addMessage(A, m2, [item(A, 'x2')])])).toEqual([true, false]);
      expect((await store.claimOutbox(10, 10, 1000)).map((i) => i.id).sort()).toEqual(['first', 'x1']);
    });

    it('claims due items once until their lease ends, settles only with the current claim, retries, dead-letters', async () => {
      await store.putApp(app(A));
      await store.putApp(app(B));
      await store.enqueueOutbox(A, [item(A, 'a1'), item(A, 'a2', 4500)]);
      await store.enqueueOutbox(B, [item(B, 'b1')]);
      await store.enqueueOutbox(A, [{ ...item(A, 'a1'), payload: { changed: true } }]); // present: left alone
      const first = await store.claimOutbox(100, 10, 1000);
      expect(first.map((i) => i.id).sort()).toEqual(['a1', 'b1']);
      expect(first.every((i) => i.attempts === 1 && i.nextAt === 1100 && typeof i.claim === 'string')).toBe(true);
      expect(first.find((i) => i.id === 'a1')!.payload).toEqual({ url: 'http://127.0.0.1/x', list: [] });
      expect(await store.claimOutbox(200, 10, 1000)).toEqual([]); // leased, a2 not due
      const a1 = first.find((i) => i.id === 'a1')!;
      const b1 = first.find((i) => i.id === 'b1')!;
      // The lease ran out: another worker reclaims a1; the first claim can no longer settle it.
      const reclaimed = await store.claimOutbox(1200, 10, 1000);
      expect(reclaimed.map((i) => [i.id, i.attempts]).sort()).toEqual([['a1', 2], ['b1', 2]]);
      const again = reclaimed.filter((i) => i.id === 'a1');
      expect(await store.settleOutbox(B, 'b1', b1.claim!, { status: 'delivered' }, 1300)).toBe(false);
      expect(await store.settleOutbox(A, 'a1', a1.claim!, { status: 'delivered' }, 1300)).toBe(false);
      expect(await store.settleOutbox(A, 'a1', again[0]!.claim!, { status: 'pending', nextAt: 5000, error: 'HTTP 500', payload: { left: ['x'] } }, 1300)).toBe(true);
      expect(await store.settleOutbox(A, 'a1', again[0]!.claim!, { status: 'delivered' }, 1300)).toBe(false);
      expect(await store.settleOutbox(B, 'b1', reclaimed.find((i) => i.id === 'b1')!.claim!, { status: 'delivered' }, 1400)).toBe(true);
      const a2 = await store.claimOutbox(4999, 10, 1000);
      expect(a2.map((i) => i.id)).toEqual(['a2']);
      expect(await store.settleOutbox(A, 'a2', a2[0]!.claim!, { status: 'delivered' }, 4999)).toBe(true);
      const retried = await store.claimOutbox(5000, 10, 1000);
      expect(retried.map((i) => [i.id, i.attempts, i.lastError, i.payload])).toEqual([['a1', 3, 'HTTP 500', { left: ['x'] }]]);
      expect(await store.settleOutbox(A, 'a1', retried[0]!.claim!, { status: 'dead', error: 'gave up' }, 6000)).toBe(true);
      expect(await store.claimOutbox(99_999, 10, 1000)).toEqual([]);
      const listed = await store.listOutbox(A, 10);
      expect(listed.map((i) => [i.id, i.status])).toEqual([['a1', 'dead'], ['a2', 'delivered']]);
      expect(listed[0]).toMatchObject({ attempts: 3, lastError: 'gave up', kind: 'webhook', appId: A });
      expect((await store.listOutbox(B, 10)).map((i) => [i.id, i.status])).toEqual([['b1', 'delivered']]);
      expect(await store.listOutbox(A, 1)).toHaveLength(1);
    });

    it('keeps a bounded number of settled outbox items, the newest; deleting the application drops its outbox', async () => {
      await store.putApp(app(A));
      const n = OUTBOX_KEEP_SETTLED + OUTBOX_PRUNE_EVERY + 50;
      await store.enqueueOutbox(A, Array.from({ length: n }, (_, i) => item(A, `i${i}`)));
      const claimed = await store.claimOutbox(1, n, 1000);
      expect(claimed).toHaveLength(n);
      // Settled in time order, as a clock would.
      claimed.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
      for (const c of claimed) await store.settleOutbox(A, c.id, c.claim!, { status: 'delivered' }, 10 + Number(c.id.slice(1)));
      const listed = await store.listOutbox(A, n);
      expect(listed.length).toBeGreaterThanOrEqual(OUTBOX_KEEP_SETTLED);
      expect(listed.length).toBeLessThanOrEqual(OUTBOX_KEEP_SETTLED + OUTBOX_PRUNE_EVERY);
      expect(listed[0]!.id).toBe(`i${n - 1}`);
      // What is kept is the newest, in order: no gap.
      expect(listed.map((i) => Number(i.id.slice(1)))).toEqual(Array.from({ length: listed.length }, (_, k) => n - 1 - k));
      await store.enqueueOutbox(A, [item(A, 'late')]);
      await store.deleteApp(A);
      expect(await store.claimOutbox(1_000_000, 10, 1000)).toEqual([]);
    });

    it('searchMessages: normalised substrings (CJK of any length) in the given rooms only, newest first, per application', async () => {
      for (const r of ['r1', 'r2', 'r3']) await store.createRoom(A, room(r, ['u1']));
      await store.createRoom(B, room('r1', ['u1']));
      const text = (id: string, roomId: string, body: string, fields: Record<string, unknown> = {}, messageType = 'text') =>
        store.addMessage(A, { ...message(id, roomId), message: body, fields, messageType });
      await text('m1', 'r1', 'The Launch  plan is ready');
      await text('m2', 'r2', 'launch codes');
      await text('m3', 'r1', '明天開會討論設計');
      await text('m4', 'r1', '', { extra: { fileName: 'Launch-Budget.pdf' } }, 'file');
      await text('m5', 'r3', 'launch party');
      await text('m6', 'r1', 'ab ba');
      await store.addMessage(B, { ...message('b1', 'r1'), message: 'launch elsewhere' });
      const ids = async (keyword: string, rooms = ['r1', 'r2'], messageTypes?: string[]) =>
        (await store.searchMessages(A, rooms, keyword, { limit: 10, messageTypes })).messages.map((m) => m.id);
      expect(await ids('LAUNCH')).toEqual(['m4', 'm2', 'm1']);
      expect(await ids('launch', ['r3'])).toEqual(['m5']);
      expect(await ids('launch', [])).toEqual([]);
      expect(await ids('launch', ['r1'], ['file', 'image'])).toEqual(['m4']);
      expect(await ids('設計')).toEqual(['m3']);
      expect(await ids('設')).toEqual(['m3']);
      expect(await ids('會討論')).toEqual(['m3']);
      expect(await ids('設會')).toEqual([]);
      expect(await ids('plan is r')).toEqual(['m1']);
      expect(await ids('launch plan')).toEqual(['m1']);
      expect(await ids('plan ready')).toEqual([]);
      // Every gram of 'aba' is in 'ab ba', the substring is not.
      expect(await ids('aba')).toEqual([]);
      expect(await ids('zebra')).toEqual([]);
      expect((await store.searchMessages(B, ['r1'], 'launch', { limit: 10 })).messages.map((m) => m.id)).toEqual(['b1']);
    });

    it('searchMessages follows edits, recalls, deletions and room deletion', async () => {
      for (const r of ['r1', 'r2']) await store.createRoom(A, room(r, ['u1']));
      await store.addMessage(A, { ...message('m1', 'r1'), message: 'launch plan' });
      await store.addMessage(A, { ...message('m2', 'r1'), message: 'launch 設計' });
      await store.addMessage(A, { ...message('m3', 'r2'), message: 'launch day' });
      const ids = async (keyword: string) => (await store.searchMessages(A, ['r1', 'r2'], keyword, { limit: 10 })).messages.map((m) => m.id);
      // An edit: the old text is no longer found, the new one is.
      await store.updateMessage(A, 'm1', (m) => ({ ...m, message: 'postponed 會議' }));
      expect(await ids('launch')).toEqual(['m3', 'm2']);
      expect(await ids('會議')).toEqual(['m1']);
      // A change that leaves the text (a reaction) keeps it found.
      await store.updateMessage(A, 'm2', (m) => ({ ...m, fields: { reactions: [{ key: 'like' }] } }));
      expect(await ids('設計')).toEqual(['m2']);
      // A recall: its text is never found again.
      await store.updateMessage(A, 'm2', (m) => ({ ...m, messageType: 'recall', message: '', fields: {} }));
      expect(await ids('設計')).toEqual([]);
      expect(await ids('launch')).toEqual(['m3']);
      await store.replaceMessage(A, { ...message('m3', 'r2'), message: 'replaced text' });
      expect(await ids('launch')).toEqual([]);
      expect(await ids('replaced')).toEqual(['m3']);
      expect(await store.deleteMessage(A, 'r2', 'm3')).toBe(true);
      expect(await ids('replaced')).toEqual([]);
      await store.addMessage(A, { ...message('m4', 'r2'), message: 'cleared soon' });
      await store.clearMessages(A, 'r2');
      expect(await ids('cleared')).toEqual([]);
      await store.deleteRoom(A, 'r1');
      expect(await ids('會議')).toEqual([]);
      // A room of the same id made again starts with nothing to find.
      await store.createRoom(A, room('r1', ['u1']));
      await store.addMessage(A, { ...message('m5', 'r1'), message: 'fresh start' });
      expect(await ids('會議')).toEqual([]);
      expect(await ids('fresh')).toEqual(['m5']);
    });

    it('searchMessages stops at the limit, newest first, and a cursor continues where it stopped', async () => {
      await store.createRoom(A, room('r1', ['u1']));
      await store.createRoom(A, room('r2', ['u1']));
      // Sent together (one group commit where the store batches), in two rooms, half of them matching.
      await Promise.all(
        Array.from({ length: 160 }, (_, i) =>
          store.addMessage(A, { ...message(`m${String(i).padStart(3, '0')}`, i % 4 < 2 ? 'r1' : 'r2'), message: i % 2 === 0 ? `needle ${i}` : `hay ${i}` }),
        ),
      );
      const needles = Array.from({ length: 80 }, (_, k) => `m${String(158 - 2 * k).padStart(3, '0')}`);
      const first = await store.searchMessages(A, ['r1', 'r2'], 'needle', { limit: 60 });
      expect(first.messages.map((m) => m.id)).toEqual(needles.slice(0, 60));
      expect(first.cursor).toBeDefined();
      const rest = await store.searchMessages(A, ['r1', 'r2'], 'needle', { limit: 60, cursor: first.cursor });
      expect(rest.messages.map((m) => m.id)).toEqual(needles.slice(60));
      expect(rest.cursor).toBeUndefined();
      expect((await store.searchMessages(A, ['r2'], 'needle', { limit: 3 })).messages.map((m) => m.id)).toEqual(['m158', 'm154', 'm150']);
    });
  });
}
