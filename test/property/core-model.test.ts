import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PostgresDb } from '../../src/store/sql/postgres.js';
import { SqliteDb } from '../../src/store/sql/sqlite.js';
import { SqlStore } from '../../src/store/sql/store.js';
import type { Store } from '../../src/store/store.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { api, startTestServer, type TestApp, type TestServer, TRANSPORTS } from '../helpers/server.js';
import { connect, once } from '../helpers/sockets.js';

/**
 * Property-based tests of the core: random sequences of operations by several users and the
 * API key, run through the real server (real HTTP, real socket.io-client) on every store, with
 * the invariants of issue #13 checked after every step. This replaces the seeded randomized
 * moderation test: its "never leak, always deliver" checks are invariants here.
 *
 * Budget (CI time is bounded by runs × steps): PROPERTY_RUNS sequences per store and transport
 * (default 20 on SQLite, 10 on PostgreSQL), up to PROPERTY_STEPS operations each (default 25).
 * A failure prints the shrunk sequence as JSON and the seed/path; replay with
 * PROPERTY_SEED=<seed> PROPERTY_PATH=<path>, or run exactly one sequence with PROPERTY_REPLAY='<json>'.
 *
 * Request bodies follow imkit/api-doc (pages/docs/admin/Admin-Create-or-Update-Client.md,
 * pages/docs/client/Blocklist-Block-a-user.md, pages/docs/client/Blocklist-Block-a-user-in-a-room.md,
 * pages/docs/client/Me-Mute-room.md) and the Vue SDK's send / recall shapes.
 */

const USERS = ['u0', 'u1', 'u2', 'u3'] as const;
const ROOMS = ['r0', 'r1'] as const;
type UserId = (typeof USERS)[number];
type RoomId = (typeof ROOMS)[number];
type Who = UserId | 'api';

type Op =
  | { op: 'join'; who: UserId; room: RoomId }
  | { op: 'apiJoin'; room: RoomId }
  | { op: 'leave'; who: UserId; room: RoomId }
  | { op: 'add'; who: Who; target: UserId; room: RoomId }
  | { op: 'kick'; who: Who; target: UserId; room: RoomId }
  | { op: 'send'; who: Who; room: RoomId; reply: number | null }
  | { op: 'edit'; who: UserId; msg: number }
  | { op: 'recall'; who: Who; msg: number }
  | { op: 'delete'; who: Who; msg: number }
  | { op: 'pin'; who: Who; msg: number }
  | { op: 'unpin'; who: Who; msg: number }
  | { op: 'block'; who: UserId; target: UserId }
  | { op: 'unblock'; who: UserId; target: UserId }
  | { op: 'ban'; who: Who; target: UserId; room: RoomId }
  | { op: 'unban'; who: Who; target: UserId; room: RoomId }
  | { op: 'freeze'; who: Who; room: RoomId; frozen: boolean }
  | { op: 'mute'; who: UserId; room: RoomId; muted: boolean }
  | { op: 'read'; who: UserId; room: RoomId }
  | { op: 'reissue'; target: UserId }
  | { op: 'upsert'; target: UserId; nickname: string };

const user = fc.constantFrom(...USERS);
const who = fc.constantFrom<Who>(...USERS, 'api');
const room = fc.constantFrom(...ROOMS);
const msg = fc.nat(40);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('join' as const), who: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('apiJoin' as const), room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('leave' as const), who: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('add' as const), who, target: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('kick' as const), who, target: user, room }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('send' as const), who, room, reply: fc.option(msg, { freq: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('edit' as const), who: user, msg }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('recall' as const), who, msg }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), who, msg }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pin' as const), who, msg }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unpin' as const), who, msg }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('block' as const), who: user, target: user }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unblock' as const), who: user, target: user }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('ban' as const), who, target: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unban' as const), who, target: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('freeze' as const), who, room, frozen: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('mute' as const), who: user, room, muted: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('read' as const), who: user, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reissue' as const), target: user }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('upsert' as const), target: user, nickname: fc.constantFrom('a', 'b', 'c') }) },
);

const RUNS = (store: string) => Number(process.env.PROPERTY_RUNS ?? (store === 'sqlite' ? 20 : 10));
const STEPS = Number(process.env.PROPERTY_STEPS ?? 25);

/** What the test knows of each message it sent: every text it carried (unique tokens). */
interface Sent {
  id: string;
  room: RoomId;
  sender: UserId | undefined;
  texts: string[];
  /** Deleted: sending with its id again makes a new message (IMKIT's send-with-_id). */
  deleted?: boolean;
}

/** One sequence: a fresh application, its users' sockets, and what the test saw. */
class World {
  app!: TestApp;
  tokens = {} as Record<UserId, string>;
  sockets = {} as Record<UserId, Socket>;
  /** Events each user's socket received during the current step. */
  events = {} as Record<UserId, { event: string; payload: any }[]>;
  sent: Sent[] = [];
  recalled = new Set<string>();
  blocks = new Set<string>(); // `${blocker}>${blockee}`
  textSeq = 0;

  constructor(
    readonly t: TestServer,
    readonly store: Store,
  ) {}

  as(w: Who) {
    return w === 'api' ? api(this.t.base, { 'IM-API-KEY': this.app.apiKey }) : api(this.t.base, { 'IM-CLIENT-KEY': this.app.clientKey, 'IM-Authorization': this.tokens[w] });
  }

  async open(): Promise<void> {
    this.app = await this.t.createApp(`p${randomBytes(3).toString('hex')}`);
    for (const u of USERS) this.tokens[u] = await this.t.createUser(this.app, u);
    const adm = this.as('api');
    expect((await adm.post('/rooms', { _id: 'r0', name: 'r0', owner: 'u0', members: ['u0', 'u1', 'u2'] })).status).toBe(200);
    expect((await adm.post('/rooms', { _id: 'r1', name: 'r1', owner: 'u1', members: ['u1', 'u2', 'u3'] })).status).toBe(200);
    await Promise.all(USERS.map((u) => this.connectUser(u)));
  }

  /** The user's socket, on their current token (a reissued token cuts the old one's sockets). */
  async connectUser(u: UserId): Promise<void> {
    this.sockets[u]?.disconnect();
    const s = connect(this.t.base, { auth: { clientKey: this.app.clientKey, token: this.tokens[u] } });
    this.sockets[u] = s;
    this.events[u] = [];
    for (const event of ['chat message', 'room', 'client', 'messageDeleted']) s.on(event, (payload: any) => this.events[u].push({ event, payload }));
    await once(s, 'connect');
  }

  close(): void {
    for (const s of Object.values(this.sockets)) s.disconnect();
  }

  /** Every event an operation caused has reached every socket: an ack on each socket comes after them. */
  async sync(): Promise<void> {
    await Promise.all(USERS.map((u) => this.sockets[u].emitWithAck('sync')));
  }

  text(): string {
    return `§${++this.textSeq}§`;
  }

  pick(i: number): Sent | undefined {
    return this.sent.length === 0 ? undefined : this.sent[i % this.sent.length];
  }

  /** Runs one operation; any answer but a 5xx is acceptable (the invariants judge the state). */
  async apply(op: Op): Promise<void> {
    for (const u of USERS) this.events[u] = [];
    const r = await this.call(op);
    if (r) {
      expect(r.status, `${JSON.stringify(op)} answered ${r.status} ${JSON.stringify(r.body)}`).toBeLessThan(500);
      if (op.op === 'apiJoin') expect(r.body.error?.code).toBe('USER_TOKEN_REQUIRED');
    }
    await this.sync();
  }

  private async call(op: Op): Promise<{ status: number; body: any } | undefined> {
    switch (op.op) {
      case 'join':
        return this.as(op.who).post(`/rooms/${op.room}/join`);
      case 'apiJoin':
        return this.as('api').post(`/rooms/${op.room}/join`);
      case 'leave':
        return this.as(op.who).post(`/rooms/${op.room}/delete/members`, { members: [op.who] });
      case 'add':
        return this.as(op.who).post(`/rooms/${op.room}/members`, { invitees: [op.target] });
      case 'kick':
        return this.as(op.who).post(`/rooms/${op.room}/delete/members`, { members: [op.target] });
      case 'send': {
        const text = this.text();
        const quoted = op.reply === null ? undefined : this.pick(op.reply);
        const body = { message: text, messageType: 'text', ...(quoted && quoted.room === op.room ? { reply: quoted.id } : {}) };
        const r = await this.as(op.who).post(`/rooms/${op.room}/message`, body);
        if (r.status === 200) {
          this.sent.push({ id: r.body.result._id, room: op.room, sender: op.who === 'api' ? undefined : op.who, texts: [text] });
          this.expectDelivered(r.body.result._id, op.room, op.who === 'api' ? undefined : op.who);
        }
        return r;
      }
      case 'edit': {
        const m = this.pick(op.msg);
        if (!m) return undefined;
        const text = this.text();
        const r = await this.as(op.who).post(`/rooms/${m.room}/message`, { _id: m.id, message: text, messageType: 'text' });
        if (r.status === 200 && m.deleted) {
          // The id names a new message now, by this sender (what was deleted is gone for good).
          Object.assign(m, { sender: op.who, texts: [text], deleted: false });
          this.recalled.delete(m.id);
          this.expectDelivered(m.id, m.room, op.who);
        } else if (r.status === 200) m.texts.push(text);
        return r;
      }
      case 'recall': {
        const m = this.pick(op.msg);
        if (!m) return undefined;
        const r = await this.as(op.who).post(`/rooms/${m.room}/message`, { _id: m.id, messageType: 'recall' });
        if (r.status === 200) this.recalled.add(m.id);
        return r;
      }
      case 'delete': {
        const m = this.pick(op.msg);
        if (!m) return undefined;
        const r = await this.as(op.who).del(`/rooms/${m.room}/messages/${m.id}`);
        if (r.status === 200) m.deleted = true;
        return r;
      }
      case 'pin':
      case 'unpin': {
        const m = this.pick(op.msg);
        if (!m) return undefined;
        return op.op === 'pin' ? this.as(op.who).post(`/messages/${m.id}/pin`) : this.as(op.who).del(`/messages/${m.id}/pin`);
      }
      case 'block': {
        const r = await this.as(op.who).post(`/blockStatus/my/${op.target}`);
        if (r.status === 200) this.blocks.add(`${op.who}>${op.target}`);
        return r;
      }
      case 'unblock': {
        const r = await this.as(op.who).del(`/blockStatus/my/${op.target}`);
        if (r.status === 200) this.blocks.delete(`${op.who}>${op.target}`);
        return r;
      }
      case 'ban':
        return this.as(op.who).post(`/blockStatus/room/${op.room}/${op.target}`);
      case 'unban':
        return this.as(op.who).del(`/blockStatus/room/${op.room}/${op.target}`);
      case 'freeze':
        return this.as(op.who).put(`/rooms/${op.room}`, { status: op.frozen ? 0 : 1 });
      case 'mute':
        return op.muted ? this.as(op.who).post(`/me/mute/${op.room}`) : this.as(op.who).del(`/me/mute/${op.room}`);
      case 'read': {
        const history = (await this.as('api').get(`/rooms/${op.room}/messages/v3?limit=1`)).body.result?.data ?? [];
        if (history.length === 0) return undefined;
        return this.as(op.who).put(`/rooms/${op.room}/lastRead`, { message: history[0]._id });
      }
      case 'reissue': {
        const r = await this.as('api').post('/admin/clients', { _id: op.target, issueAccessToken: true });
        if (r.status === 200) {
          // A new token replaces the older ones (IMKIT): the old socket is cut; the user reconnects.
          this.tokens[op.target] = r.body.result.token;
          await this.connectUser(op.target);
        }
        return r;
      }
      case 'upsert':
        return this.as('api').post('/admin/clients', { _id: op.target, nickname: op.nickname });
    }
  }

  /** Checked after the step's sync: who hears a message (members with access who did not block its sender). */
  private pendingDelivery: { id: string; room: RoomId; sender: UserId | undefined } | undefined;
  private expectDelivered(id: string, room: RoomId, sender: UserId | undefined): void {
    this.pendingDelivery = { id, room, sender };
  }

  blocked(blocker: UserId, sender: string | undefined): boolean {
    return sender !== undefined && this.blocks.has(`${blocker}>${sender}`);
  }

  /** Texts a user must never see now: everything recalled, and what the users they blocked sent. */
  forbiddenFor(u: UserId): string[] {
    return this.sent.filter((m) => this.recalled.has(m.id) || this.blocked(u, m.sender)).flatMap((m) => m.texts);
  }

  async checkInvariants(step: number): Promise<void> {
    const appId = this.app.appId;
    const adm = this.as('api');
    const rooms = await Promise.all(ROOMS.map((r) => this.store.getRoom(appId, r)));
    const users = await this.store.getUsers(appId, USERS);
    for (const u of users) expect(u, 'every user still exists').toBeDefined();
    const known = new Set(USERS as readonly string[]);
    for (const [i, r] of rooms.entries()) {
      const roomId = ROOMS[i]!;
      expect(r, `room ${roomId} exists`).toBeDefined();
      const record = r!;
      // Every member is a user; members and member states agree.
      for (const m of record.members) expect(typeof m === 'string' && known.has(m), `member ${String(m)} of ${roomId} is a user`).toBe(true);
      expect([...record.members].sort()).toEqual(Object.keys(record.memberState).sort());
      // Members and the user→rooms index agree.
      for (const u of USERS) {
        const indexed = (await this.store.userRoomIds(appId, u)).includes(roomId);
        expect(indexed, `index of ${u} vs members of ${roomId}`).toBe(record.members.includes(u));
      }
      // At most one pinned message, it is flagged, it is in the room and not recalled.
      const history = (await adm.get(`/rooms/${roomId}/messages/v3?limit=1000`)).body.result.data as any[];
      const flagged = history.filter((m) => m.pinned === true).map((m) => m._id);
      const view = (await adm.get(`/rooms/${roomId}`)).body.result;
      if (record.pinnedMessageId === undefined) {
        expect(flagged).toEqual([]);
        expect(view.pinnedMessage).toBeNull();
      } else {
        expect(flagged).toEqual([record.pinnedMessageId]);
        expect(view.pinnedMessage).toMatchObject({ _id: record.pinnedMessageId, pinned: true });
        expect(this.recalled.has(record.pinnedMessageId), 'a recalled message is not pinned').toBe(false);
      }
      // Recalled content never appears again: stored, history, views.
      const recalledTexts = this.sent.filter((m) => this.recalled.has(m.id)).flatMap((m) => m.texts);
      const adminText = JSON.stringify([history, view]);
      for (const text of recalledTexts) expect(adminText.includes(text), `recalled ${text} visible to the API key`).toBe(false);
      for (const id of this.recalled) {
        const stored = await this.store.getMessage(appId, id);
        if (stored) expect(stored).toMatchObject({ messageType: 'recall', message: '' });
      }
      // Per member: access, hidden senders, unread counts.
      const ascending = [...history].reverse();
      for (const u of USERS) {
        const state = record.memberState[u];
        const banned = record.banned?.[u] !== undefined;
        const as = this.as(u);
        if (!state) continue;
        if (banned) {
          const read = await as.get(`/rooms/${roomId}/messages/v3`);
          expect(read.body.error?.code, `${u} banned from ${roomId} reads`).toBe('BANNED_FROM_ROOM');
          const post = await as.post(`/rooms/${roomId}/message`, { message: 'must not land', messageType: 'text' });
          expect(post.body.error?.code, `${u} banned from ${roomId} posts`).toBe('BANNED_FROM_ROOM');
          const heard = this.events[u].filter((e) => e.event === 'chat message' && e.payload?.room === roomId);
          expect(heard, `${u} banned from ${roomId} hears it`).toEqual([]);
          continue;
        }
        const mine = (await as.get(`/rooms/${roomId}/messages/v3?limit=1000`)).body.result.data as any[];
        const myView = (await as.get(`/rooms/${roomId}`)).body.result;
        const seen = JSON.stringify([mine, myView]);
        for (const text of this.forbiddenFor(u)) expect(seen.includes(text), `${u} sees ${text} (history or room view)`).toBe(false);
        for (const m of mine) expect(this.blocked(u, m.sender?._id), `${u} sees a message of someone they blocked`).toBe(false);
        const at = state.lastRead === undefined ? -1 : ascending.findIndex((m) => m._id === state.lastRead);
        const unread = ascending.slice(at + 1).filter((m) => !this.blocked(u, m.sender?._id)).length;
        expect(myView.unread, `${u}'s unread in ${roomId}`).toBe(unread);
      }
    }
    // The badge is the sum of the unread counts of the rooms the user may read.
    for (const u of USERS) {
      let sum = 0;
      for (const r of rooms) {
        if (!r?.memberState[u] || r.banned?.[u]) continue;
        sum += (await this.as(u).get(`/rooms/${r.id}`)).body.result.unread;
      }
      expect((await this.as(u).get('/me/badge')).body.result.badge, `${u}'s badge`).toBe(sum);
    }
    // Live: nothing forbidden reached anyone during this step; a new message reached everyone it should.
    for (const u of USERS) {
      const live = JSON.stringify(this.events[u]);
      for (const text of this.forbiddenFor(u)) expect(live.includes(text), `${u} got ${text} live`).toBe(false);
    }
    const p = this.pendingDelivery;
    this.pendingDelivery = undefined;
    if (p) {
      const r = rooms[ROOMS.indexOf(p.room)]!;
      for (const u of USERS) {
        const hears = r.memberState[u] !== undefined && r.banned?.[u] === undefined && !this.blocked(u, p.sender);
        const got = this.events[u].filter((e) => e.event === 'chat message' && e.payload?._id === p.id).length;
        expect(got, `step ${step}: ${u} got message ${p.id} ${got} times`).toBe(hears ? 1 : 0);
      }
    }
  }
}

/** Every implementation of the store port: the SQL store on its two engines. */
const STORES = ['sqlite', 'postgres'] as const;

describe.each(STORES)('core properties on %s', (storeKind) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-property-'));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    if (storeKind === 'postgres') await dropSchemas();
  });

  describe.each(TRANSPORTS)('over %s', (transport) => {
    let t: TestServer;
    let store: Store;
    beforeAll(async () => {
      store = await SqlStore.open(
        storeKind === 'sqlite' ? new SqliteDb(path.join(dir, `${transport}.db`)) : new PostgresDb(SHARED_DATABASE_URL, { schema: freshSchema() }),
      );
      // The sequences drive one API key far past IMKIT's 1000 requests a minute on purpose.
      t = await startTestServer(
        transport,
        { socketEventsPerSecond: 100_000, handshakesPerMinutePerAddress: 1_000_000, restRequestsPerMinutePerApiKey: 0, restRequestsPerMinutePerUser: 0 },
        { store },
      );
    });
    afterAll(async () => {
      await t?.close();
    });

    const figures = { sequences: 0, steps: 0 };
    afterAll(() => {
      console.info(`property figures (${storeKind}, ${transport}): ${figures.sequences} sequences, ${figures.steps} steps checked`);
    });

    it(`invariants hold after every step (${RUNS(storeKind)} sequences × up to ${STEPS} steps)`, { timeout: 600_000 }, async () => {
      const run = async (ops: Op[]) => {
        const world = new World(t, store);
        await world.open();
        figures.sequences++;
        try {
          for (const [step, op] of ops.entries()) {
            await world.apply(op);
            await world.checkInvariants(step);
            figures.steps++;
          }
        } finally {
          world.close();
        }
      };
      if (process.env.PROPERTY_REPLAY) return run(JSON.parse(process.env.PROPERTY_REPLAY) as Op[]);
      await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: STEPS, size: 'max' }), run), {
        numRuns: RUNS(storeKind),
        seed: process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED),
        path: process.env.PROPERTY_PATH,
        endOnFailure: process.env.PROPERTY_SHRINK === '0',
        reporter: (details) => {
          if (!details.failed) return;
          const shrunk = details.counterexample?.[0];
          throw new Error(
            `property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath})\n` +
              `replay: PROPERTY_REPLAY='${JSON.stringify(shrunk)}'\n` +
              `${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`,
          );
        },
      });
    });
  });
});
