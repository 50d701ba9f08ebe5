import { describe, expect, it } from 'vitest';
import type { MessageRecord, RoomRecord, UserRecord } from '../../src/core/models.js';
import type { Db } from '../../src/store/sql/db.js';
import { migrate, SCHEMA_VERSION } from '../../src/store/sql/schema.js';
import { SqlStore } from '../../src/store/sql/store.js';

/**
 * What the SQL store promises beyond today's port contract: the insert-only `addMessage`,
 * the compare-and-set updates, group commit, migrations shared by several nodes, and a room
 * cache that never serves a stale document. `newDatabase` makes an empty database (a file,
 * a schema) and returns a way to open connections to it.
 */
export function sqlStoreChecks(name: string, newDatabase: () => () => Db): void {
  describe(`SQL store: ${name}`, () => {
    const A = 'app-a';
    const room = (id: string, members: string[]): RoomRecord => ({
      id, roomType: 'group', managers: [], members,
      memberState: Object.fromEntries(members.map((m) => [m, { joinedAt: 1 }])),
      roomTags: [], status: 1, systemMessage: false, lastActivityAt: 1, createdAt: 1, updatedAt: 1,
    });
    let clock = 1000;
    const message = (id: string, roomId: string, sender = 'u1'): MessageRecord => ({
      id, room: roomId, sender, messageType: 'text', message: id, fields: {}, createdAt: ++clock, updatedAt: clock,
    });
    const user = (id: string): UserRecord => ({ id, nickname: id, custom: {}, createdAt: 1, updatedAt: 1 });

    async function withStore<T>(fn: (store: SqlStore) => Promise<T>): Promise<T> {
      return withStoreOn(newDatabase(), fn);
    }
    /** Two stores on one database: two nodes, or two connections of one process. */
    async function withTwoStores<T>(fn: (one: SqlStore, two: SqlStore) => Promise<T>): Promise<T> {
      const open = newDatabase();
      const one = await SqlStore.open(open());
      const two = await SqlStore.open(open());
      try {
        return await fn(one, two);
      } finally {
        await one.close();
        await two.close();
      }
    }
    async function withStoreOn<T>(open: () => Db, fn: (store: SqlStore) => Promise<T>): Promise<T> {
      const store = await SqlStore.open(open());
      try {
        return await fn(store);
      } finally {
        await store.close();
      }
    }

    it('addMessage is insert-only: a repeated id resolves false and changes nothing', () =>
      withStore(async (store) => {
        await store.createRoom(A, room('r1', ['u1', 'u2']));
        expect(await store.addMessage(A, message('m1', 'r1'))).toBe(true);
        expect(await store.addMessage(A, { ...message('m1', 'r1', 'u2'), message: 'other' })).toBe(false);
        expect((await store.getMessage(A, 'm1'))!.message).toBe('m1');
        expect(await store.countMessages(A, 'r1')).toBe(1);
        expect((await store.getRoom(A, 'r1'))!.memberState.u2!.lastRead).toBeUndefined();
        // The same id twice in one turn: one of them is stored.
        const twice = await Promise.all([store.addMessage(A, message('m2', 'r1')), store.addMessage(A, message('m2', 'r1'))]);
        expect(twice.sort()).toEqual([false, true]);
        expect(await store.countMessages(A, 'r1')).toBe(2);
      }));

    it('group-commits concurrent sends, keeping their order, pointers and counts', () =>
      withStore(async (store) => {
        await store.createRoom(A, room('r1', ['u1', 'u2']));
        await store.createRoom(A, room('r2', ['u1', 'u2']));
        const sends = Array.from({ length: 300 }, (_, i) => message(`c${i}`, i % 2 ? 'r2' : 'r1', i % 3 ? 'u1' : 'u2'));
        expect(await Promise.all(sends.map((m) => store.addMessage(A, m)))).toEqual(sends.map(() => true));
        const r1 = (await store.listMessages(A, 'r1', { direction: 'newer', includeAnchor: false, limit: 1000 }))!;
        expect(r1.map((m) => m.id)).toEqual(sends.filter((m) => m.room === 'r1').map((m) => m.id));
        expect(await store.countMessages(A, 'r1')).toBe(150);
        const room1 = (await store.getRoom(A, 'r1'))!;
        expect(room1.lastMessageId).toBe('c298');
        expect(room1.memberState.u1!.lastRead).toBe(sends.filter((m) => m.room === 'r1' && m.sender === 'u1').at(-1)!.id);
        expect(room1.memberState.u2!.lastRead).toBe(sends.filter((m) => m.room === 'r1' && m.sender === 'u2').at(-1)!.id);
        expect(await store.addMessage(A, message('lost', 'no-such-room'))).toBe(false);
      }));

    it('updateUser, updateApp and updateMessage are read-modify-write, undefined when missing', () =>
      withStore(async (store) => {
        await store.putUser(A, user('u1'));
        const after = await store.updateUser(A, 'u1', (u) => ({ ...u, nickname: 'renamed' }));
        expect(after?.nickname).toBe('renamed');
        expect((await store.getUser(A, 'u1'))?.nickname).toBe('renamed');
        expect(await store.updateUser(A, 'u1', () => undefined)).toMatchObject({ nickname: 'renamed' });
        expect(await store.updateUser(A, 'nobody', (u) => u)).toBeUndefined();

        await store.putApp({ id: A, name: 'a', domains: [], apiKeyHash: 'h1', signingSecret: 's', clientKey: null, createdAt: 1 });
        await store.updateApp(A, (a) => ({ ...a, apiKeyHash: 'h2' }));
        expect((await store.getAppByApiKeyHash('h2'))?.id).toBe(A);
        expect(await store.getAppByApiKeyHash('h1')).toBeUndefined();
        expect(await store.updateApp('none', (a) => a)).toBeUndefined();

        await store.createRoom(A, room('r1', ['u1']));
        await store.addMessage(A, message('m1', 'r1'));
        const edited = await store.updateMessage(A, 'm1', (m) => ({ ...m, message: 'edited', editedAt: 5 }));
        expect(edited).toMatchObject({ id: 'm1', message: 'edited', editedAt: 5 });
        expect((await store.getMessage(A, 'm1'))?.message).toBe('edited');
        expect(await store.updateMessage(A, 'zz', (m) => m)).toBeUndefined();
      }));

    it('concurrent read-modify-writes lose no update', () =>
      withStore(async (store) => {
        await store.putUser(A, { ...user('u1'), custom: { n: 0 } });
        await store.createRoom(A, room('r1', ['u1']));
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            Promise.all([
              store.updateUser(A, 'u1', (u) => ({ ...u, custom: { n: (u.custom.n as number) + 1 } })),
              store.updateRoom(A, 'r1', (r) => ({ ...r, roomTags: [...r.roomTags, `t${i}`] })),
            ]),
          ),
        );
        expect((await store.getUser(A, 'u1'))!.custom.n).toBe(20);
        expect((await store.getRoom(A, 'r1'))!.roomTags).toHaveLength(20);
      }));

    it('concurrent first upserts of one user lose no write: one creates, the others change it', () =>
      withStore(async (store) => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.upsertUser(A, 'fresh', (u) => ({ ...u, custom: { ...u.custom, [`k${i}`]: i } }), () => ({ ...user('fresh'), custom: { [`k${i}`]: i } })),
          ),
        );
        expect(results.every((u) => u.id === 'fresh')).toBe(true);
        expect(Object.keys((await store.getUser(A, 'fresh'))!.custom).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
      }));

    it('a node never serves a room document another node changed', () =>
      withTwoStores(async (one, two) => {
        await one.createRoom(A, room('r1', ['u1']));
        expect((await two.getRoomForUser(A, 'r1', 'u1'))!.status).toBe(1);
        await one.updateRoom(A, 'r1', (r) => ({ ...r, status: 0, name: 'frozen' }));
        expect(await two.getRoomForUser(A, 'r1', 'u1')).toMatchObject({ status: 0, name: 'frozen' });
        await one.deleteRoom(A, 'r1');
        expect(await two.getRoomForUser(A, 'r1', 'u1')).toBeUndefined();
      }));

    it('a send checked against a room another node changed is not stored: the cached read is refused by version', () =>
      withTwoStores(async (one, two) => {
        await one.createRoom(A, room('r1', ['u1', 'u2']));
        const first = (await one.getRoomForSend(A, 'r1', 'u2'))!;
        expect(first.room.member).toMatchObject({ joinedAt: 1 });
        // SQLite's cache is exact (every connection's writes are seen): nothing to check at insert.
        if (one.db.engine === 'sqlite') expect(first.version).toBeUndefined();
        else expect(first.version).toEqual(expect.any(Number));
        expect(await one.addMessage(A, message('m1', 'r1', 'u2'), [], undefined, first.version)).toBe(true);
        // Another node removes u2.
        await two.updateRoom(A, 'r1', (r) => ({ ...r, members: ['u1'], memberState: { u1: r.memberState.u1! } }));
        const second = await one.getRoomForSend(A, 'r1', 'u2');
        if (one.db.engine === 'sqlite') {
          expect(second!.room.member).toBeUndefined();
        } else {
          // Served from this node's cache, so still the old room, and refused when stored.
          expect(second).toMatchObject({ version: first.version, room: { member: { joinedAt: 1 } } });
          await expect(one.addMessage(A, message('m2', 'r1', 'u2'), [], undefined, second!.version)).rejects.toMatchObject({ code: 'ROOM_CHANGED' });
          expect(await one.getMessage(A, 'm2')).toBeUndefined();
          // The refusal dropped the cached room: the next read is the database's.
          const third = (await one.getRoomForSend(A, 'r1', 'u2'))!;
          expect(third.room.member).toBeUndefined();
          expect(third.version).not.toBe(first.version);
        }
        // A member's state alone (no document change) is a new version too.
        const before = (await two.getRoomForSend(A, 'r1', 'u1'))!;
        await one.updateRoom(A, 'r1', (r) => ({ ...r, memberState: { u1: { ...r.memberState.u1!, role: 'admin' } } }));
        if (one.db.engine === 'postgres') {
          await expect(two.addMessage(A, message('m3', 'r1', 'u1'), [], undefined, before.version)).rejects.toMatchObject({ code: 'ROOM_CHANGED' });
        }
        // A room deleted and created again under its id does not repeat the version a node cached.
        const cached = (await two.getRoomForSend(A, 'r1', 'u1'))!;
        await one.deleteRoom(A, 'r1');
        await one.createRoom(A, room('r1', ['u1']));
        if (one.db.engine === 'postgres') {
          await expect(two.addMessage(A, message('m4', 'r1', 'u1'), [], undefined, cached.version)).rejects.toMatchObject({ code: 'ROOM_CHANGED' });
        }
        const now = (await two.getRoomForSend(A, 'r1', 'u1'))!;
        expect(await two.addMessage(A, message('m5', 'r1', 'u1'), [], undefined, now.version)).toBe(true);
      }));

    it("a member's room read follows every write: sends, read receipts, member changes, deletions, other connections", () =>
      withTwoStores(async (one, two) => {
        const read = (store: SqlStore, user = 'u2') => store.getRoomForUser(A, 'r1', user);
        await one.createRoom(A, room('r1', ['u1', 'u2']));
        expect((await read(one))!.lastMessageId).toBeUndefined();
        expect((await read(one, 'u3'))!.member).toBeUndefined();
        // A send moves the room's last message and the sender's last read, nobody else's.
        await one.addMessage(A, message('m1', 'r1', 'u2'));
        expect(await read(one)).toMatchObject({ lastMessageId: 'm1', lastActivityAt: clock, member: { lastRead: 'm1' } });
        expect((await read(one, 'u1'))!.member!.lastRead).toBeUndefined();
        await one.addMessage(A, message('m2', 'r1', 'u1'));
        expect((await read(one, 'u1'))!.member!.lastRead).toBe('m2');
        expect((await read(one))!.member!.lastRead).toBe('m1');
        expect(await one.setLastRead(A, 'r1', 'u2', 'm2')).toBe(true);
        expect((await read(one))!.member!.lastRead).toBe('m2');
        // What a caller does to its copy stays its own.
        const mine = (await read(one))!;
        mine.members.push('intruder');
        mine.member!.role = 'admin';
        expect((await read(one))!.members).toEqual(['u1', 'u2']);
        expect((await read(one))!.member!.role).toBeUndefined();
        // Member changes and message deletions through this store.
        await one.updateRoom(A, 'r1', (r) => ({ ...r, members: ['u1', 'u3'], memberState: { u1: r.memberState.u1!, u3: { joinedAt: 2 } } }));
        expect((await read(one))!.member).toBeUndefined();
        expect((await read(one, 'u3'))!.member).toMatchObject({ joinedAt: 2 });
        await one.deleteMessage(A, 'r1', 'm2');
        expect((await read(one, 'u1'))).toMatchObject({ lastMessageId: 'm1', member: { lastRead: 'm1' } });
        // A read that was under way while a write committed is not kept.
        const during = read(one, 'u3');
        await one.updateRoom(A, 'r1', (r) => ({ ...r, name: 'renamed' }));
        await during;
        expect((await read(one, 'u3'))!.name).toBe('renamed');
        // Writes through another connection to the same database.
        await two.addMessage(A, message('m3', 'r1', 'u3'));
        expect(await read(one, 'u3')).toMatchObject({ lastMessageId: 'm3', member: { lastRead: 'm3' } });
        await two.setLastRead(A, 'r1', 'u1', 'm3');
        expect((await read(one, 'u1'))!.member!.lastRead).toBe('m3');
        await two.clearMessages(A, 'r1');
        expect((await read(one, 'u1'))!.lastMessageId).toBeUndefined();
        await two.deleteRoom(A, 'r1');
        expect(await read(one, 'u1')).toBeUndefined();
      }));

    it('cached records (views, auth) are dropped by local writes and by control events from other nodes', () =>
      withTwoStores(async (one, two) => {
        await one.putUser(A, user('u1'));
        expect((await two.getUsers(A, ['u1']))[0]?.nickname).toBe('u1');
        await one.putUser(A, { ...user('u1'), nickname: 'renamed' });
        // Node two still has its copy until the control event arrives; a local write evicts at once.
        expect((await two.getUsers(A, ['u1']))[0]?.nickname).toBe('u1');
        expect((await two.getUser(A, 'u1'))?.nickname).toBe('renamed'); // read-modify-writes read the database
        two.onControl({ kind: 'users-changed', appId: A, userIds: ['u1'] });
        expect((await two.getUsers(A, ['u1']))[0]?.nickname).toBe('renamed');

        const token = { hash: 'h1', userId: 'u1', expiresAt: 9e15, issued: true, createdAt: 1 };
        await one.putToken(A, token);
        expect(await two.getToken(A, 'h1')).toEqual(token);
        await one.deleteTokens(A, 'u1');
        expect(await one.getToken(A, 'h1')).toBeUndefined();
        two.onControl({ kind: 'tokens-revoked', appId: A, userId: 'u1', hashes: ['h1'] });
        expect(await two.getToken(A, 'h1')).toBeUndefined();

        const app = { id: A, name: 'a', domains: [], apiKeyHash: 'k', signingSecret: 's', clientKey: { kid: 'k1', token: 't1', createdAt: 1 }, createdAt: 1 };
        await one.putApp(app);
        expect((await two.getApp(A))?.clientKey?.kid).toBe('k1');
        await one.putApp({ ...app, clientKey: null });
        two.onControl({ kind: 'client-key-revoked', appId: A });
        expect((await two.getApp(A))?.clientKey).toBeNull();
        // Copies: changing a cached result changes nothing.
        const got = (await two.getUsers(A, ['u1', 'u1']))!;
        got[0]!.nickname = 'mutated';
        expect(got[1]?.nickname).toBe('renamed');
        expect((await two.getUsers(A, ['u1']))[0]?.nickname).toBe('renamed');
      }));

    it('migrates once when several nodes start together, and refuses a newer schema', async () => {
      const open = newDatabase();
      const stores = await Promise.all([1, 2, 3].map(() => SqlStore.open(open())));
      const versions = await stores[0]!.db.all<{ version: number }>(`SELECT version FROM schema_migrations ORDER BY version`);
      expect(versions.map((v) => Number(v.version))).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      await stores[0]!.db.run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, [SCHEMA_VERSION + 1, Date.now()]);
      await Promise.all(stores.map((s) => s.close()));
      await expect(SqlStore.open(open())).rejects.toThrow(/newer than this roomcast knows/);
    });

    it('migration 4 indexes the messages stored before it for search (CJK included) and for listing, and flags groups', async () => {
      const open = newDatabase();
      const old = open();
      await migrate(old, 3);
      // Rows as a version-3 store wrote them (messages at schema 3 carried no search data).
      const docs = [
        { ...message('m1', 'r1'), message: '舊訊息：設計稿' },
        { ...message('m2', 'r1'), message: 'Old Launch notes' },
        { ...message('m3', 'r2'), message: 'launch elsewhere', fields: { batchID: 'b9' } },
        { ...message('m4', 'r1'), messageType: 'recall', message: '' },
      ];
      for (const m of docs) await old.run(`INSERT INTO messages (app, id, room, doc) VALUES (?, ?, ?, ?)`, [A, m.id, m.room, JSON.stringify(m)]);
      for (const u of [user('plain'), { ...user('team'), group: { members: ['plain'] } }]) {
        await old.run(`INSERT INTO users (app, id, created_at, doc) VALUES (?, ?, ?, ?)`, [A, u.id, u.createdAt, JSON.stringify(u)]);
      }
      await old.close();
      await withStoreOn(open, async (store) => {
        const ids = async (keyword: string, rooms = ['r1']) => (await store.searchMessages(A, rooms, keyword, { limit: 10 })).messages.map((m) => m.id);
        expect(await ids('設計')).toEqual(['m1']);
        expect(await ids('launch')).toEqual(['m2']);
        expect(await ids('launch', ['r1', 'r2'])).toEqual(['m3', 'm2']);
        // The listing columns are filled too.
        const listed = await store.listAppMessages(A, { from: docs[1]!.createdAt, limit: 10 });
        expect({ total: listed.total, ids: listed.messages.map((m) => m.id) }).toEqual({ total: 3, ids: ['m4', 'm3', 'm2'] });
        expect((await store.listAppMessages(A, { batchID: 'b9', limit: 10 })).messages.map((m) => m.id)).toEqual(['m3']);
        expect((await store.listGroups(A, 10)).users.map((u) => u.id)).toEqual(['team']);
        // Kept in step afterwards like any message.
        await store.updateMessage(A, 'm1', (m) => ({ ...m, message: 'edited' }));
        expect(await ids('設計')).toEqual([]);
      });
    });

    it('migration 6 has a version-5 SQLite search index merge its segments 8 at a time', async () => {
      const db = newDatabase()();
      try {
        await migrate(db, 5);
        const automerge = async () =>
          db.engine === 'sqlite' ? (await db.all<{ v: number }>(`SELECT v FROM message_grams_config WHERE k = 'automerge'`))[0]?.v : 'n/a';
        expect(await automerge()).toBe(db.engine === 'sqlite' ? undefined : 'n/a');
        expect(await migrate(db)).toEqual({ from: 5, to: SCHEMA_VERSION });
        expect(await automerge()).toBe(db.engine === 'sqlite' ? 8 : 'n/a');
      } finally {
        await db.close();
      }
    });

    it('applies a migration missing below the newest applied one (versions shipped out of order)', async () => {
      const open = newDatabase();
      const old = open();
      await migrate(old, 3);
      // As if the newest version had shipped (and been applied) before version 4.
      await old.run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, [SCHEMA_VERSION, Date.now()]);
      await old.run(`INSERT INTO messages (app, id, room, doc) VALUES (?, ?, ?, ?)`, [A, 'm1', 'r1', JSON.stringify({ ...message('m1', 'r1'), message: '找得到' })]);
      await old.close();
      const db = open();
      expect(await migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
      const versions = await db.all<{ version: number }>(`SELECT version FROM schema_migrations ORDER BY version`);
      expect(versions.map((v) => Number(v.version))).toContain(4);
      await db.close();
      await withStoreOn(open, async (store) => {
        expect((await store.searchMessages(A, ['r1'], '找到', { limit: 10 })).messages).toEqual([]);
        expect((await store.searchMessages(A, ['r1'], '得到', { limit: 10 })).messages.map((m) => m.id)).toEqual(['m1']);
      });
    });
  });
}
