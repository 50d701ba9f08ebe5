import { Errors } from '../../core/errors.js';
import type {
  AppRecord,
  BlockRecord,
  DeviceRecord,
  FileRecord,
  InvitationRecord,
  MemberRoom,
  MemberState,
  MessageRecord,
  OutboxItem,
  OutboxOutcome,
  PrefRecord,
  QuittedRoom,
  RoomRecord,
  TokenRecord,
  UserRecord,
} from '../../core/models.js';
import type { ControlMessage } from '../../bus/bus.js';
import { setOwn } from '../../core/own.js';
import { newId } from '../../core/secrets.js';
import { matchesKeyword, normalise, searchableText } from '../../core/search-text.js';
import {
  type AppMessageQuery,
  byInvitationOrder,
  type HistoryQuery,
  type MessageSearchQuery,
  OUTBOX_KEEP_SETTLED,
  OUTBOX_PRUNE_EVERY,
  type Store,
  type UserFilter,
} from '../store.js';
import { type Db, marks, type Param, type Queryer } from './db.js';
import { migrate } from './schema.js';
import { userFilterSql } from './user-filter.js';
import { gramsParam, indexNewSqlite, indexSqlite, listingParams, PG_GRAMS, searchCandidates } from './search.js';
import { type CachedMember, type CachedRoom, RoomCache } from './room-cache.js';

/** The room document as stored: the record without what lives in columns and member rows. */
type RoomDoc = Omit<RoomRecord, 'memberState' | 'lastMessageId' | 'lastActivityAt'>;
interface RoomRow {
  doc: string | null;
  version: number;
  last_message_id: string | null;
  last_activity_at: number;
}
interface MemberRow {
  user_id: string;
  state: string;
  last_read: string | null;
}
interface PendingMessage {
  appId: string;
  message: MessageRecord;
  doc: string;
  /** Outbox items written with the message (only if it is). */
  outbox: readonly OutboxItem[];
  /** The room version the send was checked against (`getRoomForSend` from the cache), if any. */
  roomVersion?: number;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

const parse = <T>(json: string): T => JSON.parse(json) as T;
/** `users.is_group`: 1 for a user group (`/admin/groups`). */
export const isGroup = (user: UserRecord): number => (user.group ? 1 : 0);

interface OutboxRow {
  app: string;
  id: string;
  kind: string;
  payload: string;
  status: string;
  attempts: number | string;
  next_at: number | string;
  claim: string | null;
  last_error: string | null;
  created_at: number | string;
  updated_at: number | string;
}
const OUTBOX_COLUMNS = 'app, id, kind, payload, status, attempts, next_at, claim, last_error, created_at, updated_at';

function outboxItem(r: OutboxRow): OutboxItem {
  const item: OutboxItem = {
    id: r.id, appId: r.app, kind: r.kind as OutboxItem['kind'], payload: parse<Record<string, unknown>>(r.payload),
    status: r.status as OutboxItem['status'], attempts: Number(r.attempts), nextAt: Number(r.next_at),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
  if (r.claim !== null) item.claim = r.claim;
  if (r.last_error !== null) item.lastError = r.last_error;
  return item;
}

/**
 * Records the auth path reads on every request, kept for a few seconds. Changes made through
 * this node evict at once; changes made on other nodes arrive as control events
 * (`onControl`); the time limit bounds staleness if one is missed (Redis subscriber away).
 */
class RecordCache<T> {
  private entries = new Map<string, { value: T; until: number }>();
  constructor(private ttlMs: number, private max = 10_000) {}
  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until > Date.now()) return copy(e.value);
    this.entries.delete(key);
    return undefined;
  }
  set(key: string, value: T): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value: copy(value), until: Date.now() + this.ttlMs });
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
  deleteWhere(test: (key: string, value: T) => boolean): void {
    for (const [key, e] of this.entries) if (test(key, e.value)) this.entries.delete(key);
  }
  clear(): void {
    this.entries.clear();
  }
}
const CACHE_MS = 5000;
/** Rows per multi-row statement: far under SQLite's 32,766 and PostgreSQL's 65,535 parameters. */
const CHUNK = 200;
const NO_STATE = 'null';
/** Group commit: a batch below SMALL_BATCH waits one more turn when the last commit began within BUSY_WITHIN_MS. */
const SMALL_BATCH = 32;
const BUSY_WITHIN_MS = 2;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Deep copy of plain JSON data (objects, arrays, primitives), keeping a `__proto__` key as data. */
function copy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(copy) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copy((value as Record<string, unknown>)[key]);
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out as T;
}

/** Which sends of the batch were stored: a repeated id is stored once, its first occurrence. */
function firstOccurrences(batch: readonly PendingMessage[], insertedIds: ReadonlySet<string>): boolean[] {
  const seen = new Set<string>();
  return batch.map((p) => {
    const key = `${p.appId}\0${p.message.id}`;
    if (!insertedIds.has(key) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * A new room's first version: random, so that a room deleted and created again under its id
 * never repeats a version another node has cached (the send check and `roomDocs` compare them).
 */
const firstRoomVersion = (): number => 1 + Math.floor(Math.random() * 2 ** 40);

function splitRoom(room: RoomRecord): { doc: RoomDoc; memberState: Record<string, MemberState> } {
  const { memberState, lastMessageId: _last, lastActivityAt: _at, ...doc } = room;
  return { doc, memberState };
}

function memberStateJson(state: MemberState | undefined): { state: string; lastRead: string | null } {
  if (!state) return { state: NO_STATE, lastRead: null };
  const { lastRead, ...rest } = state;
  return { state: JSON.stringify(rest), lastRead: lastRead ?? null };
}

/**
 * One user's view of a room from its (shared, cached) document: the mutable parts are copies,
 * so a caller changing its room never changes the cache.
 */
function memberRoom(
  doc: RoomDoc,
  columns: Pick<CachedRoom<RoomDoc>, 'lastMessageId' | 'lastActivityAt'>,
  member: CachedMember | null,
  userId: string,
): MemberRoom {
  // Built in one object: this runs for every message sent.
  const scoped: MemberRoom = {
    ...doc,
    members: doc.members.slice(),
    managers: doc.managers.slice(),
    roomTags: doc.roomTags.slice(),
    lastActivityAt: Number(columns.lastActivityAt),
    viewer: userId,
    member: member === null || member.state === NO_STATE ? undefined : stateOf(member.state, member.lastRead),
  };
  if (columns.lastMessageId !== null) scoped.lastMessageId = columns.lastMessageId;
  if (doc.banned) scoped.banned = copy(doc.banned);
  return scoped;
}

function stateOf(json: string, lastRead: string | null): MemberState {
  const state = parse<MemberState>(json);
  if (lastRead !== null) state.lastRead = lastRead;
  return state;
}

function assembleRoom(doc: RoomDoc, row: RoomRow, members: readonly MemberRow[]): RoomRecord {
  const memberState: Record<string, MemberState> = {};
  for (const m of members) {
    if (m.state === NO_STATE) continue;
    // As data even for a user id like `__proto__`.
    setOwn(memberState, m.user_id, stateOf(m.state, m.last_read));
  }
  const room: RoomRecord = { ...doc, memberState, lastActivityAt: Number(row.last_activity_at) };
  if (row.last_message_id !== null) room.lastMessageId = row.last_message_id;
  return room;
}

/**
 * The Store port on SQL, one implementation for SQLite (embedded) and PostgreSQL (clusters)
 * through the dialect layer in db.ts. Records are JSON documents; the columns beside them are
 * what queries filter, sort or change on their own (a room's last message, a member's
 * last-read message) so the send path never rewrites a document.
 *
 * Send path: `getRoomForUser` is one query (room + that member), and the room document is
 * parsed once per version (the query sends it only when the version changed). `addMessage`
 * is group-committed: the messages of one event-loop turn are stored in one transaction of
 * three statements, so throughput is not one commit (fsync) per message.
 */
export class SqlStore implements Store {
  /** app\0room → the room document at a version (see getRoomForUser). */
  private roomDocs = new Map<string, { version: number; doc: RoomDoc }>();
  /**
   * Member rooms as read (see RoomCache). SQLite: exact (this store's writes, `data_version`
   * for any other connection's), so every `getRoomForUser` uses it. PostgreSQL, where other
   * nodes write: only `getRoomForSend` uses it, and the insert checks the room's version.
   */
  private roomCache: RoomCache<RoomDoc>;
  private readonly roomCacheExact: boolean;
  private appCache = new RecordCache<AppRecord>(CACHE_MS);
  /** app\0token hash → token */
  private tokenCache = new RecordCache<TokenRecord>(CACHE_MS);
  /** app\0user id → user, for `getUsers` (the views: a message's sender, member lists) only. */
  private userCache = new RecordCache<UserRecord>(CACHE_MS);
  private pending: PendingMessage[] = [];
  /** Per application: settles since the last outbox pruning, and its time. */
  private outboxPrunes = new Map<string, { settles: number; at: number }>();
  private flushScheduled = false;
  private lastFlushAt = -Infinity;
  private flushing = false;

  private constructor(readonly db: Db) {
    const changedElsewhere = db.changedElsewhere?.bind(db);
    this.roomCacheExact = changedElsewhere !== undefined;
    this.roomCache = new RoomCache<RoomDoc>(changedElsewhere ?? (() => false), NO_STATE);
  }

  /** Opens the store, applying any migrations first. */
  static async open(db: Db): Promise<SqlStore> {
    try {
      await migrate(db);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new SqlStore(db);
  }

  // ---- applications ------------------------------------------------------------------------

  async putApp(app: AppRecord): Promise<void> {
    this.appCache.delete(app.id);
    await this.db.run(
      `INSERT INTO apps (id, api_key_hash, doc) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET api_key_hash = excluded.api_key_hash, doc = excluded.doc`,
      [app.id, app.apiKeyHash, JSON.stringify(app)],
    );
  }
  async getApp(appId: string): Promise<AppRecord | undefined> {
    const hit = this.appCache.get(appId);
    if (hit) return hit;
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM apps WHERE id = ?`, [appId]);
    const app = row && parse<AppRecord>(row.doc);
    // Only apps with a client key: a key generated on another node must not wait for the time limit.
    if (app?.clientKey) this.appCache.set(appId, app);
    return app;
  }
  async getAppByApiKeyHash(hash: string): Promise<AppRecord | undefined> {
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM apps WHERE api_key_hash = ?`, [hash]);
    return row && parse<AppRecord>(row.doc);
  }
  async listApps(): Promise<AppRecord[]> {
    // Creation order (ids are random): the operator's list reads as the applications were made.
    const apps = (await this.db.all<{ doc: string }>(`SELECT doc FROM apps ORDER BY id`)).map((r) => parse<AppRecord>(r.doc));
    return apps.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  async updateApp(appId: string, change: (a: AppRecord) => AppRecord | undefined): Promise<AppRecord | undefined> {
    this.appCache.delete(appId);
    return this.db.tx(async (q) => {
      const [row] = await q.all<{ doc: string }>(`SELECT doc FROM apps WHERE id = ?${this.db.forUpdate}`, [appId]);
      if (!row) return undefined;
      const next = change(parse<AppRecord>(row.doc));
      if (!next) return parse<AppRecord>(row.doc);
      const doc = JSON.stringify({ ...next, id: appId });
      await q.run(`UPDATE apps SET api_key_hash = ?, doc = ? WHERE id = ?`, [next.apiKeyHash, doc, appId]);
      return parse<AppRecord>(doc);
    });
  }
  async deleteApp(appId: string): Promise<boolean> {
    const gone = await this.db.tx(async (q) => {
      for (const table of ['users', 'tokens', 'rooms', 'members', 'messages', 'blocks', 'files', 'prefs', 'file_rooms', 'user_deleted', 'invitations', 'devices', 'outbox', 'quitted_rooms', 'group_room_prefs']) {
        await q.run(`DELETE FROM ${table} WHERE app = ?`, [appId]);
      }
      return q.run(`DELETE FROM apps WHERE id = ?`, [appId]);
    });
    this.forgetApp(appId);
    return gone > 0;
  }

  private forgetApp(appId: string): void {
    this.appCache.delete(appId);
    this.tokenCache.deleteWhere((key) => key.startsWith(`${appId}\0`));
    this.userCache.deleteWhere((key) => key.startsWith(`${appId}\0`));
    for (const key of this.roomDocs.keys()) if (key.startsWith(`${appId}\0`)) this.roomDocs.delete(key);
    this.roomCache.clear();
  }

  /**
   * Runs a write to a room's rows that the room cache does not mirror: the cached room is
   * dropped when the write ends (committed or not), and no read from before fills it again.
   */
  private async changingRoom<T>(appId: string, roomId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.roomCache.drop(`${appId}\0${roomId}`);
    }
  }

  /** Drops what a change made on another node (a control event) makes stale here. */
  onControl(message: ControlMessage): void {
    switch (message.kind) {
      case 'tokens-revoked':
        for (const hash of message.hashes) this.tokenCache.delete(`${message.appId}\0${hash}`);
        this.tokenCache.deleteWhere((key, t) => key.startsWith(`${message.appId}\0`) && t.userId === message.userId);
        return;
      case 'client-key-revoked':
        this.appCache.delete(message.appId);
        return;
      case 'app-deleted':
        this.forgetApp(message.appId);
        return;
      case 'apps-changed':
        this.appCache.clear();
        return;
      case 'users-changed':
        for (const id of message.userIds) this.userCache.delete(`${message.appId}\0${id}`);
        return;
      default:
        return;
    }
  }

  // ---- users and tokens --------------------------------------------------------------------

  async putUser(appId: string, user: UserRecord): Promise<void> {
    this.userCache.delete(`${appId}\0${user.id}`);
    await this.db.run(
      `INSERT INTO users (app, id, created_at, doc, is_group) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (app, id) DO UPDATE SET created_at = excluded.created_at, doc = excluded.doc, is_group = excluded.is_group`,
      [appId, user.id, user.createdAt, JSON.stringify(user), isGroup(user)],
    );
  }
  async getUser(appId: string, userId: string): Promise<UserRecord | undefined> {
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM users WHERE app = ? AND id = ?`, [appId, userId]);
    return row && parse<UserRecord>(row.doc);
  }
  /**
   * Served from the view cache where it can be: a copy may be up to CACHE_MS old when another
   * node changed only the user's status (profile changes and deletions arrive as control
   * events). `getUser`, which read-modify-writes use, always reads the database.
   */
  async getUsers(appId: string, userIds: readonly string[]): Promise<(UserRecord | undefined)[]> {
    const found = new Map<string, UserRecord>();
    const missing: string[] = [];
    for (const id of new Set(userIds)) {
      const hit = this.userCache.get(`${appId}\0${id}`);
      if (hit) found.set(id, hit);
      else missing.push(id);
    }
    for (const part of chunks(missing)) {
      const rows = await this.db.all<{ id: string; doc: string }>(
        `SELECT id, doc FROM users WHERE app = ? AND id IN (${marks(part.length)})`,
        [appId, ...part],
      );
      for (const r of rows) {
        const user = parse<UserRecord>(r.doc);
        this.userCache.set(`${appId}\0${r.id}`, user);
        found.set(r.id, user);
      }
    }
    const seen = new Set<string>();
    return userIds.map((id) => {
      const user = found.get(id);
      if (!user) return undefined;
      // A repeated id gets a copy of its own: results never share objects.
      if (seen.has(id)) return copy(user);
      seen.add(id);
      return user;
    });
  }
  async listUsers(appId: string, skip: number, limit: number, filter?: UserFilter): Promise<{ total: number; users: UserRecord[] }> {
    const where = userFilterSql(this.db.engine, filter);
    const [count] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM users WHERE app = ?${where.sql}`, [appId, ...where.params]);
    const rows = await this.db.all<{ doc: string }>(
      `SELECT doc FROM users WHERE app = ?${where.sql} ORDER BY created_at, id LIMIT ? OFFSET ?`,
      [appId, ...where.params, Math.max(0, limit), Math.max(0, skip)],
    );
    return { total: Number(count?.n ?? 0), users: rows.map((r) => parse<UserRecord>(r.doc)) };
  }
  /** `users_groups`, a partial index of the application's groups in creation order. */
  async listGroups(appId: string, limit: number): Promise<{ total: number; users: UserRecord[] }> {
    const [count] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM users WHERE app = ? AND is_group = 1`, [appId]);
    const rows = await this.db.all<{ doc: string }>(`SELECT doc FROM users WHERE app = ? AND is_group = 1 ORDER BY created_at, id LIMIT ?`, [
      appId, Math.max(0, limit),
    ]);
    return { total: Number(count?.n ?? 0), users: rows.map((r) => parse<UserRecord>(r.doc)) };
  }
  updateUser(appId: string, userId: string, change: (u: UserRecord) => UserRecord | undefined): Promise<UserRecord | undefined> {
    return this.changeUser(appId, userId, change, undefined);
  }
  async upsertUser(appId: string, userId: string, change: (u: UserRecord) => UserRecord | undefined, create: () => UserRecord): Promise<UserRecord> {
    const user = await this.changeUser(appId, userId, change, create);
    if (!user) throw new Error(`upsertUser: '${userId}' neither updated nor created`); // unreachable: see changeUser
    return user;
  }
  /** One transaction: the row locked and changed, or (with `create`) inserted when missing. */
  private async changeUser(
    appId: string,
    userId: string,
    change: (u: UserRecord) => UserRecord | undefined,
    create: (() => UserRecord) | undefined,
  ): Promise<UserRecord | undefined> {
    this.userCache.delete(`${appId}\0${userId}`);
    return this.db.tx(async (q) => {
      const read = () => q.all<{ doc: string }>(`SELECT doc FROM users WHERE app = ? AND id = ?${this.db.forUpdate}`, [appId, userId]);
      let [row] = await read();
      if (!row && create) {
        const user = { ...create(), id: userId };
        const doc = JSON.stringify(user);
        const added = await q.run(
          `INSERT INTO users (app, id, created_at, doc, is_group) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app, id) DO NOTHING`,
          [appId, userId, user.createdAt, doc, isGroup(user)],
        );
        if (added > 0) return parse<UserRecord>(doc);
        // Created by a concurrent transaction that committed meanwhile (PostgreSQL): change theirs.
        [row] = await read();
      }
      if (!row) return undefined;
      const next = change(parse<UserRecord>(row.doc));
      if (!next) return parse<UserRecord>(row.doc);
      const doc = JSON.stringify({ ...next, id: userId });
      await q.run(`UPDATE users SET created_at = ?, doc = ?, is_group = ? WHERE app = ? AND id = ?`, [next.createdAt, doc, isGroup(next), appId, userId]);
      return parse<UserRecord>(doc);
    });
  }

  async deleteUser(appId: string, userId: string): Promise<boolean> {
    this.userCache.delete(`${appId}\0${userId}`);
    this.tokenCache.deleteWhere((key, t) => key.startsWith(`${appId}\0`) && t.userId === userId);
    return this.db.tx(async (q) => {
      await q.run(`DELETE FROM tokens WHERE app = ? AND user_id = ?`, [appId, userId]);
      await q.run(`DELETE FROM prefs WHERE app = ? AND user_id = ?`, [appId, userId]);
      await q.run(`DELETE FROM devices WHERE app = ? AND user_id = ?`, [appId, userId]);
      return (await q.run(`DELETE FROM users WHERE app = ? AND id = ?`, [appId, userId])) > 0;
    });
  }

  async putToken(appId: string, token: TokenRecord): Promise<void> {
    this.tokenCache.delete(`${appId}\0${token.hash}`);
    await this.db.run(
      `INSERT INTO tokens (app, hash, user_id, doc) VALUES (?, ?, ?, ?)
       ON CONFLICT (app, hash) DO UPDATE SET user_id = excluded.user_id, doc = excluded.doc`,
      [appId, token.hash, token.userId, JSON.stringify(token)],
    );
  }
  async getToken(appId: string, hash: string): Promise<TokenRecord | undefined> {
    const key = `${appId}\0${hash}`;
    const hit = this.tokenCache.get(key);
    if (hit) return hit;
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM tokens WHERE app = ? AND hash = ?`, [appId, hash]);
    const token = row && parse<TokenRecord>(row.doc);
    if (token) this.tokenCache.set(key, token);
    return token;
  }
  async listTokens(appId: string, userId: string): Promise<TokenRecord[]> {
    const rows = await this.db.all<{ doc: string }>(`SELECT doc FROM tokens WHERE app = ? AND user_id = ?`, [appId, userId]);
    return rows.map((r) => parse<TokenRecord>(r.doc)).sort((a, b) => a.createdAt - b.createdAt);
  }
  async deleteTokens(appId: string, userId: string, hash?: string): Promise<TokenRecord[]> {
    this.tokenCache.deleteWhere((key, t) => key.startsWith(`${appId}\0`) && t.userId === userId);
    const rows =
      hash === undefined
        ? await this.db.all<{ doc: string }>(`DELETE FROM tokens WHERE app = ? AND user_id = ? RETURNING doc`, [appId, userId])
        : await this.db.all<{ doc: string }>(`DELETE FROM tokens WHERE app = ? AND user_id = ? AND hash = ? RETURNING doc`, [appId, userId, hash]);
    return rows.map((r) => parse<TokenRecord>(r.doc));
  }

  // ---- rooms -------------------------------------------------------------------------------

  async createRoom(appId: string, room: RoomRecord): Promise<boolean> {
    const { doc, memberState } = splitRoom(room);
    return this.changingRoom(appId, room.id, () =>
      this.db.tx(async (q) => {
        const created = await q.run(
          `INSERT INTO rooms (app, id, doc, version, last_message_id, last_activity_at, message_count)
           VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (app, id) DO NOTHING`,
          [appId, room.id, JSON.stringify(doc), firstRoomVersion(), room.lastMessageId ?? null, room.lastActivityAt],
        );
        if (created === 0) return false;
        await this.writeMembers(q, appId, room.id, new Map(), room.members, memberState);
        return true;
      }),
    );
  }

  async getRoom(appId: string, roomId: string): Promise<RoomRecord | undefined> {
    return (await this.getRooms(appId, [roomId]))[0];
  }
  async getRooms(appId: string, roomIds: readonly string[]): Promise<(RoomRecord | undefined)[]> {
    const found = new Map<string, RoomRecord>();
    for (const part of chunks([...new Set(roomIds)])) {
      const rows = await this.db.all<RoomRow & { id: string }>(
        `SELECT id, doc, version, last_message_id, last_activity_at FROM rooms WHERE app = ? AND id IN (${marks(part.length)})`,
        [appId, ...part],
      );
      if (rows.length === 0) continue;
      const members = await this.db.all<MemberRow & { room: string }>(
        `SELECT room, user_id, state, last_read FROM members WHERE app = ? AND room IN (${marks(rows.length)})`,
        [appId, ...rows.map((r) => r.id)],
      );
      for (const row of rows) {
        found.set(row.id, assembleRoom(parse<RoomDoc>(row.doc!), row, members.filter((m) => m.room === row.id)));
      }
    }
    return roomIds.map((id) => {
      const room = found.get(id);
      return room && (roomIds.indexOf(id) === roomIds.lastIndexOf(id) ? room : copy(room));
    });
  }

  async getRoomForUser(appId: string, roomId: string, userId: string): Promise<MemberRoom | undefined> {
    return (await this.readMemberRoom(appId, roomId, userId, this.roomCacheExact))?.room;
  }

  async getRoomForSend(appId: string, roomId: string, userId: string): Promise<{ room: MemberRoom; version?: number } | undefined> {
    const read = await this.readMemberRoom(appId, roomId, userId, true);
    // An exact cache needs no check at insert.
    return read && (this.roomCacheExact ? { room: read.room } : read);
  }

  /** The room (and one member's row) from the cache when `cached` allows and it has it, else one query. */
  private async readMemberRoom(appId: string, roomId: string, userId: string, cached: boolean): Promise<{ room: MemberRoom; version: number } | undefined> {
    const key = `${appId}\0${roomId}`;
    const hit = cached ? this.roomCache.lookup(key, userId) : undefined;
    if (hit) return { room: memberRoom(hit.room.doc, hit.room, hit.member, userId), version: hit.room.version };
    const mark = this.roomCache.mark();
    const known = this.roomDocs.get(key);
    const [row] = await this.db.all<RoomRow & { state: string | null; last_read: string | null }>(
      `SELECT r.version, CASE WHEN r.version = ? THEN NULL ELSE r.doc END AS doc, r.last_message_id, r.last_activity_at,
              m.state, m.last_read
       FROM rooms r LEFT JOIN members m ON m.app = r.app AND m.room = r.id AND m.user_id = ?
       WHERE r.app = ? AND r.id = ?`,
      [known?.version ?? -1, userId, appId, roomId],
    );
    if (!row) {
      this.roomDocs.delete(key);
      return undefined;
    }
    let doc: RoomDoc;
    if (row.doc === null && known) doc = known.doc;
    else {
      doc = parse<RoomDoc>(row.doc!);
      this.cacheRoomDoc(key, Number(row.version), doc);
    }
    const columns = { version: Number(row.version), doc, lastMessageId: row.last_message_id, lastActivityAt: Number(row.last_activity_at) };
    const member = row.state === null ? null : { state: row.state, lastRead: row.last_read };
    this.roomCache.fill(mark, key, columns, userId, member);
    return { room: memberRoom(doc, columns, member, userId), version: columns.version };
  }

  private cacheRoomDoc(key: string, version: number, doc: RoomDoc): void {
    if (this.roomDocs.size >= 10_000) this.roomDocs.delete(this.roomDocs.keys().next().value!);
    this.roomDocs.set(key, { version, doc });
  }

  async updateRoom(
    appId: string,
    roomId: string,
    change: (room: RoomRecord) => RoomRecord | undefined,
    outbox?: (before: RoomRecord, after: RoomRecord) => OutboxItem[],
  ): Promise<RoomRecord | undefined> {
    return this.changingRoom(appId, roomId, () =>
      this.db.tx(async (q) => {
        const [row] = await q.all<RoomRow>(
          `SELECT doc, version, last_message_id, last_activity_at FROM rooms WHERE app = ? AND id = ?${this.db.forUpdate}`,
          [appId, roomId],
        );
        if (!row) return undefined;
        const rows = await q.all<MemberRow>(`SELECT user_id, state, last_read FROM members WHERE app = ? AND room = ?`, [appId, roomId]);
        const current = assembleRoom(parse<RoomDoc>(row.doc!), row, rows);
        const next = change(copy(current));
        if (!next) return current;
        next.id = roomId;
        const { doc, memberState } = splitRoom(next);
        const docJson = JSON.stringify(doc);
        const before = new Map(rows.map((m) => [m.user_id, m]));
        const membersChanged = await this.writeMembers(q, appId, roomId, before, next.members, memberState);
        // A new version for any change a send is checked against: the document or a member's state.
        const version = docJson === row.doc && !membersChanged ? row.version : Number(row.version) + 1;
        await q.run(
          `UPDATE rooms SET doc = ?, version = ?, last_message_id = ?, last_activity_at = ? WHERE app = ? AND id = ?`,
          [docJson, version, next.lastMessageId ?? null, next.lastActivityAt, appId, roomId],
        );
        await this.recordQuits(q, appId, roomId, before, next.members, next.updatedAt);
        if (outbox) await this.insertOutbox(q, appId, outbox(copy(current), copy(next)));
        return parse<RoomRecord>(JSON.stringify(next));
      }),
    );
  }

  /** Brings the room's member rows from `before` to `members` + `memberState`, touching only what changed; whether anything did. */
  private async writeMembers(
    q: Queryer,
    appId: string,
    roomId: string,
    before: Map<string, MemberRow>,
    members: readonly string[],
    memberState: Record<string, MemberState>,
  ): Promise<boolean> {
    const kept = new Set(members);
    const gone = [...before.keys()].filter((id) => !kept.has(id));
    for (const part of chunks(gone)) {
      await q.run(`DELETE FROM members WHERE app = ? AND room = ? AND user_id IN (${marks(part.length)})`, [appId, roomId, ...part]);
    }
    const writes: Param[][] = [];
    for (const userId of kept) {
      const { state, lastRead } = memberStateJson(memberState[userId]);
      const old = before.get(userId);
      if (old && old.state === state && old.last_read === lastRead) continue;
      writes.push([appId, roomId, userId, state, lastRead]);
    }
    for (const part of chunks(writes)) {
      await q.run(
        `INSERT INTO members (app, room, user_id, state, last_read) VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (app, room, user_id) DO UPDATE SET state = excluded.state, last_read = excluded.last_read`,
        part.flat(),
      );
    }
    return gone.length > 0 || writes.length > 0;
  }

  /**
   * Members who left in this change are recorded as having quitted the room (with the
   * preference they had, at the change's `updatedAt`); members who (re)joined are not any more.
   */
  private async recordQuits(q: Queryer, appId: string, roomId: string, before: Map<string, MemberRow>, members: readonly string[], at: number): Promise<void> {
    const kept = new Set(members);
    const quits: Param[][] = [];
    for (const [userId, row] of before) {
      if (kept.has(userId)) continue;
      const pref = row.state === NO_STATE ? {} : (parse<MemberState>(row.state).pref ?? {});
      quits.push([appId, userId, roomId, at, JSON.stringify(pref)]);
    }
    for (const part of chunks(quits)) {
      await q.run(
        `INSERT INTO quitted_rooms (app, user_id, room, quitted_at, pref) VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (app, user_id, room) DO UPDATE SET quitted_at = excluded.quitted_at, pref = excluded.pref`,
        part.flat(),
      );
    }
    const joined = members.filter((m) => !before.has(m));
    for (const part of chunks(joined)) {
      await q.run(`DELETE FROM quitted_rooms WHERE app = ? AND room = ? AND user_id IN (${marks(part.length)})`, [appId, roomId, ...part]);
    }
  }

  async setLastRead(appId: string, roomId: string, userId: string, messageId: string): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE members SET last_read = ? WHERE app = ? AND room = ? AND user_id = ? AND state <> ?`,
      [messageId, appId, roomId, userId, NO_STATE],
    );
    if (changed > 0) this.roomCache.lastReadSet(`${appId}\0${roomId}`, userId, messageId);
    return changed > 0;
  }
  async deleteRoom(appId: string, roomId: string): Promise<boolean> {
    this.roomDocs.delete(`${appId}\0${roomId}`);
    return this.changingRoom(appId, roomId, () =>
      this.db.tx(async (q) => {
        await q.run(`DELETE FROM messages WHERE app = ? AND room = ?`, [appId, roomId]);
        await q.run(`DELETE FROM members WHERE app = ? AND room = ?`, [appId, roomId]);
        await q.run(`DELETE FROM user_deleted WHERE app = ? AND room = ?`, [appId, roomId]);
        await q.run(`DELETE FROM quitted_rooms WHERE app = ? AND room = ?`, [appId, roomId]);
        await q.run(`DELETE FROM group_room_prefs WHERE app = ? AND room = ?`, [appId, roomId]);
        return (await q.run(`DELETE FROM rooms WHERE app = ? AND id = ?`, [appId, roomId])) > 0;
      }),
    );
  }
  async countRooms(appId: string): Promise<number> {
    const [row] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM rooms WHERE app = ?`, [appId]);
    return Number(row?.n ?? 0);
  }
  async userRoomIds(appId: string, userId: string): Promise<string[]> {
    const rows = await this.db.all<{ room: string }>(`SELECT room FROM members WHERE app = ? AND user_id = ? ORDER BY room`, [appId, userId]);
    return rows.map((r) => r.room);
  }

  // ---- messages ----------------------------------------------------------------------------

  /**
   * Insert-only: resolves false (and writes nothing) when the application already has a
   * message with that id, or the room is gone. Stored with the other messages of this
   * event-loop turn in one transaction (group commit); resolves once that is committed.
   */
  addMessage(appId: string, message: MessageRecord, outbox: readonly OutboxItem[] = [], encoded?: string, roomVersion?: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ appId, message, doc: encoded ?? JSON.stringify(message), outbox, roomVersion, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    // Under load (the last commit was moments ago) a small batch waits one more turn for the
    // requests still arriving: a commit costs about as much for 5 messages as for 50.
    const busy = performance.now() - this.lastFlushAt < BUSY_WITHIN_MS;
    setImmediate(() => {
      if (busy && this.pending.length < SMALL_BATCH) return setImmediate(() => this.startFlush());
      this.startFlush();
    });
  }
  private startFlush(): void {
    this.flushScheduled = false;
    this.lastFlushAt = performance.now();
    void this.flush();
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushing = true;
    try {
      // Outbox items go in with their messages, in the same statement or transaction.
      const inserted =
        this.db.engine === 'postgres'
          ? await this.insertMessagesInOneStatement(batch)
          : await this.db.tx(async (q) => {
              const done = await this.insertMessages(q, batch);
              for (const [i, p] of batch.entries()) if (done[i] && p.outbox.length > 0) await this.insertOutbox(q, p.appId, p.outbox);
              return done;
            });
      // Mirrored in the room cache before anyone hears of them (the same changes the statements made).
      batch.forEach((p, i) => {
        if (inserted[i]) this.roomCache.messageStored(`${p.appId}\0${p.message.room}`, p.message.id, p.message.createdAt, p.message.sender);
      });
      batch.forEach((p, i) => {
        if (inserted[i] || p.roomVersion === undefined) return p.resolve(inserted[i]!);
        // Checked against a cached room: it changed (or went, or the id is taken). Forget the
        // room; the sender reads it again and retries, which tells the three apart.
        this.roomCache.drop(`${p.appId}\0${p.message.room}`);
        p.reject(Errors.roomChanged(p.message.room));
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.scheduleFlush();
    }
  }

  /**
   * PostgreSQL: the same three changes as `insertMessages`, and the outbox items of the
   * messages written, in one statement (data-modifying CTEs, atomic on their own), so a batch
   * costs one round trip instead of five (BEGIN, three statements, COMMIT): on the send path
   * the database's round trips, not its work, dominate.
   */
  private async insertMessagesInOneStatement(batch: readonly PendingMessage[]): Promise<boolean[]> {
    const insertedIds = new Set<string>();
    for (const part of chunks(batch.map((p, i) => [p, i] as const))) {
      // The outbox items of the messages written (their first occurrence in the batch, like `fresh`).
      const items = part.flatMap(([p, i]) => p.outbox.map((o) => [p, i, o] as const));
      const outbox = items.length === 0 ? '' : `,
         queued AS (
           INSERT INTO outbox (${OUTBOX_COLUMNS})
           SELECT o.app, o.id, o.kind, o.payload, o.status, CAST(o.attempts AS INTEGER), o.next_at, NULL, NULL, o.created_at, o.updated_at
           FROM (VALUES ${items.map(() => '(?, ?, CAST(? AS BIGINT), ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))').join(', ')})
             AS o (app, msg, ord, id, kind, payload, status, attempts, next_at, created_at, updated_at)
           JOIN fresh f ON f.app = o.app AND f.id = o.msg AND f.ord = o.ord
           ON CONFLICT (app, id) DO NOTHING)`;
      const outboxParams = items.flatMap(([p, i, o]) => [
        p.appId, p.message.id, i, o.id, o.kind, JSON.stringify(o.payload), o.status, o.attempts, o.nextAt, o.createdAt, o.updatedAt,
      ]);
      const rows = await this.db.all<{ app: string; id: string }>(
        `WITH v (app, id, room, doc, ord, sender, at, batch, grams, ver) AS (
           VALUES ${part.map(() => '(?, ?, ?, ?, CAST(? AS BIGINT), ?, CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT))').join(', ')}),
         ins AS (
           INSERT INTO messages (app, id, room, doc, created_at, batch_id, search_grams)
           SELECT v.app, v.id, v.room, v.doc, v.at, v.batch, string_to_array(v.grams, ' ')
           FROM v JOIN rooms r ON r.app = v.app AND r.id = v.room AND (v.ver IS NULL OR r.version = v.ver)
           ORDER BY v.ord
           ON CONFLICT (app, id) DO NOTHING RETURNING app, id),
         fresh AS (SELECT DISTINCT ON (v.app, v.id) v.* FROM v JOIN ins ON ins.app = v.app AND ins.id = v.id ORDER BY v.app, v.id, v.ord),
         last AS (SELECT DISTINCT ON (app, room) app, room, id, at FROM fresh ORDER BY app, room, ord DESC),
         counted AS (SELECT app, room, COUNT(*) AS n FROM fresh GROUP BY app, room),
         moved AS (
           UPDATE rooms SET last_message_id = last.id, last_activity_at = last.at, message_count = rooms.message_count + counted.n
           FROM last JOIN counted ON counted.app = last.app AND counted.room = last.room
           WHERE rooms.app = last.app AND rooms.id = last.room),
         reads AS (SELECT DISTINCT ON (app, room, sender) app, room, sender, id FROM fresh WHERE sender IS NOT NULL ORDER BY app, room, sender, ord DESC),
         marked AS (
           UPDATE members SET last_read = reads.id FROM reads
           WHERE members.app = reads.app AND members.room = reads.room AND members.user_id = reads.sender AND members.state <> ?)${outbox}
         SELECT app, id FROM ins`,
        [
          ...part.flatMap(([p, i]) => [
            p.appId, p.message.id, p.message.room, p.doc, i, p.message.sender ?? null, ...listingParams(p.message), gramsParam('postgres', p.message),
            p.roomVersion ?? null,
          ]),
          NO_STATE,
          ...outboxParams,
        ],
      );
      for (const r of rows) insertedIds.add(`${r.app}\0${r.id}`);
    }
    return firstOccurrences(batch, insertedIds);
  }

  /** Four statements per batch whatever its size: insert, index for search, move the rooms' pointers, mark senders' reads. */
  private async insertMessages(q: Queryer, batch: readonly PendingMessage[]): Promise<boolean[]> {
    const insertedIds = new Set<string>();
    const seqs = new Map<string, number>();
    for (const part of chunks(batch.map((p, i) => [p, i] as const))) {
      const rows = await q.all<{ app: string; id: string; seq: number }>(
        `INSERT INTO messages (app, id, room, doc, created_at, batch_id)
         SELECT v.column1, v.column2, v.column3, v.column4, v.column6, v.column7
         FROM (VALUES ${part.map(() => '(?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), ?)').join(', ')}) AS v
         JOIN rooms r ON r.app = v.column1 AND r.id = v.column3
         WHERE true ORDER BY v.column5
         ON CONFLICT (app, id) DO NOTHING RETURNING app, id, seq`,
        part.flatMap(([p, i]) => [p.appId, p.message.id, p.message.room, p.doc, i, ...listingParams(p.message)]),
      );
      for (const r of rows) {
        insertedIds.add(`${r.app}\0${r.id}`);
        seqs.set(`${r.app}\0${r.id}`, Number(r.seq));
      }
    }
    const inserted = firstOccurrences(batch, insertedIds);
    await indexNewSqlite(
      q,
      batch.flatMap((p, i) => (inserted[i] ? [{ seq: seqs.get(`${p.appId}\0${p.message.id}`)!, message: p.message }] : [])),
    );
    const rooms = new Map<string, { appId: string; room: string; last: MessageRecord; count: number }>();
    const reads = new Map<string, { appId: string; room: string; sender: string; id: string }>();
    batch.forEach((p, i) => {
      if (!inserted[i]) return;
      const m = p.message;
      const key = `${p.appId}\0${m.room}`;
      const entry = rooms.get(key);
      if (entry) {
        entry.last = m;
        entry.count++;
      } else rooms.set(key, { appId: p.appId, room: m.room, last: m, count: 1 });
      if (m.sender !== undefined) reads.set(`${key}\0${m.sender}`, { appId: p.appId, room: m.room, sender: m.sender, id: m.id });
    });
    for (const part of chunks([...rooms.values()])) {
      await q.run(
        `UPDATE rooms SET last_message_id = v.column3, last_activity_at = v.column4, message_count = message_count + v.column5
         FROM (VALUES ${part.map(() => '(?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT))').join(', ')}) AS v
         WHERE rooms.app = v.column1 AND rooms.id = v.column2`,
        part.flatMap((r) => [r.appId, r.room, r.last.id, r.last.createdAt, r.count]),
      );
    }
    for (const part of chunks([...reads.values()])) {
      await q.run(
        `UPDATE members SET last_read = v.column4
         FROM (VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')}) AS v
         WHERE members.app = v.column1 AND members.room = v.column2 AND members.user_id = v.column3 AND members.state <> ?`,
        [...part.flatMap((r) => [r.appId, r.room, r.sender, r.id]), NO_STATE],
      );
    }
    return inserted;
  }

  async getMessage(appId: string, messageId: string): Promise<MessageRecord | undefined> {
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM messages WHERE app = ? AND id = ?`, [appId, messageId]);
    return row && parse<MessageRecord>(row.doc);
  }
  async replaceMessage(appId: string, message: MessageRecord): Promise<boolean> {
    return this.db.tx(async (q) => {
      const [row] = await q.all<{ seq: number }>(`SELECT seq FROM messages WHERE app = ? AND id = ? AND room = ?`, [appId, message.id, message.room]);
      if (!row) return false;
      await this.writeMessage(q, Number(row.seq), message, true);
      return true;
    });
  }

  /** Rewrites a stored message's document and columns and, when its searchable text changed, its search index entry. */
  private async writeMessage(q: Queryer, seq: number, message: MessageRecord, reindex: boolean): Promise<void> {
    const params = [JSON.stringify(message), ...listingParams(message)];
    if (reindex && this.db.engine === 'postgres') {
      await q.run(`UPDATE messages SET doc = ?, created_at = ?, batch_id = ?, search_grams = ${PG_GRAMS} WHERE seq = ?`, [
        ...params, gramsParam('postgres', message), seq,
      ]);
      return;
    }
    await q.run(`UPDATE messages SET doc = ?, created_at = ?, batch_id = ? WHERE seq = ?`, [...params, seq]);
    if (reindex && this.db.engine === 'sqlite') await indexSqlite(q, [{ seq, message }]);
  }
  async updateMessage(
    appId: string,
    messageId: string,
    change: (m: MessageRecord) => MessageRecord | undefined,
  ): Promise<MessageRecord | undefined> {
    return this.db.tx(async (q) => {
      const [row] = await q.all<{ seq: number; doc: string }>(`SELECT seq, doc FROM messages WHERE app = ? AND id = ?${this.db.forUpdate}`, [appId, messageId]);
      if (!row) return undefined;
      const current = parse<MessageRecord>(row.doc);
      const next = change(parse<MessageRecord>(row.doc));
      if (!next) return current;
      const stored = parse<MessageRecord>(JSON.stringify({ ...next, id: messageId, room: current.room }));
      // Reactions and hiding leave the text as it was: no index write for them.
      await this.writeMessage(q, Number(row.seq), stored, searchableText(stored) !== searchableText(current));
      return stored;
    });
  }

  /**
   * Candidates from the index, a page at a time, confirmed by substring (the grams of a
   * keyword can all occur apart) and type; stops once `limit` are found. The cursor is the
   * seq of the last candidate examined.
   */
  async searchMessages(
    appId: string,
    roomIds: readonly string[],
    keyword: string,
    query: MessageSearchQuery,
  ): Promise<{ messages: MessageRecord[]; cursor?: string }> {
    const wanted = normalise(keyword);
    const limit = Math.max(0, query.limit);
    if (limit === 0) return { messages: [] };
    const types = query.messageTypes && new Set(query.messageTypes);
    const page = Math.min(Math.max(limit, 50), 500);
    const found: MessageRecord[] = [];
    let before = query.cursor !== undefined && /^\d+$/.test(query.cursor) ? Number(query.cursor) : Number.MAX_SAFE_INTEGER;
    while (found.length < limit) {
      const rows = await searchCandidates(this.db, this.db.engine, appId, roomIds, wanted, before, page);
      for (const r of rows) {
        before = Number(r.seq);
        const m = parse<MessageRecord>(r.doc);
        if (!matchesKeyword(m, wanted) || (types && !types.has(m.messageType))) continue;
        found.push(m);
        if (found.length === limit) return { messages: found, cursor: String(before) };
      }
      if (rows.length < page) return { messages: found };
    }
    return { messages: found, cursor: String(before) };
  }

  /** The anchor's position in its room (undefined when it is not a message of that room). */
  private async seqOf(q: Queryer, appId: string, roomId: string, messageId: string): Promise<number | undefined> {
    const [row] = await q.all<{ seq: number }>(`SELECT seq FROM messages WHERE app = ? AND id = ? AND room = ?`, [appId, messageId, roomId]);
    return row && Number(row.seq);
  }

  async listMessages(appId: string, roomId: string, query: HistoryQuery): Promise<MessageRecord[] | undefined> {
    const limit = Math.max(0, query.limit);
    let from: number | undefined;
    if (query.anchor !== undefined) {
      from = await this.seqOf(this.db, appId, roomId, query.anchor);
      if (from === undefined) return undefined;
    }
    const older = query.direction === 'older';
    const bound = from === undefined ? '' : older ? (query.includeAnchor ? 'AND seq <= ?' : 'AND seq < ?') : query.includeAnchor ? 'AND seq >= ?' : 'AND seq > ?';
    const rows = await this.db.all<{ doc: string }>(
      `SELECT doc FROM messages WHERE app = ? AND room = ? ${bound} ORDER BY seq ${older ? 'DESC' : 'ASC'} LIMIT ?`,
      from === undefined ? [appId, roomId, limit] : [appId, roomId, from, limit],
    );
    return rows.map((r) => parse<MessageRecord>(r.doc));
  }
  async countMessages(appId: string, roomId: string): Promise<number> {
    const [row] = await this.db.all<{ n: number }>(`SELECT message_count AS n FROM rooms WHERE app = ? AND id = ?`, [appId, roomId]);
    return Number(row?.n ?? 0);
  }
  async countMessagesChangedSince(appId: string, roomId: string, since: number): Promise<number> {
    // updatedAt is set at creation and moved by every change, so one field answers both.
    const updated = this.db.engine === 'postgres' ? `CAST(doc::json->>'updatedAt' AS BIGINT)` : `json_extract(doc, '$.updatedAt')`;
    const [row] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM messages WHERE app = ? AND room = ? AND ${updated} > ?`, [appId, roomId, since]);
    return Number(row?.n ?? 0);
  }
  async countMessagesAfter(appId: string, roomId: string, messageId: string | undefined, exceptSenders: readonly string[] = []): Promise<number> {
    const from = messageId === undefined ? undefined : await this.seqOf(this.db, appId, roomId, messageId);
    if (from === undefined && exceptSenders.length === 0) return this.countMessages(appId, roomId);
    const after = from === undefined ? '' : 'AND seq > ?';
    // Leaving out blocked senders reads each unread message's sender from its document:
    // O(unread), and only for readers who blocked someone.
    const sender = this.db.engine === 'postgres' ? `(doc::json->>'sender')` : `json_extract(doc, '$.sender')`;
    const except = exceptSenders.length === 0 ? '' : `AND (${sender} IS NULL OR ${sender} NOT IN (${marks(exceptSenders.length)}))`;
    const [row] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM messages WHERE app = ? AND room = ? ${after} ${except}`, [
      appId, roomId, ...(from === undefined ? [] : [from]), ...exceptSenders,
    ]);
    return Number(row?.n ?? 0);
  }
  async deleteMessage(appId: string, roomId: string, messageId: string): Promise<boolean> {
    return this.changingRoom(appId, roomId, () =>
      this.db.tx(async (q) => {
        const seq = await this.seqOf(q, appId, roomId, messageId);
        if (seq === undefined) return false;
        // Members who had read up to it now have read up to the one before (their unread count stays).
        const [before] = await q.all<{ id: string }>(`SELECT id FROM messages WHERE app = ? AND room = ? AND seq < ? ORDER BY seq DESC LIMIT 1`, [
          appId, roomId, seq,
        ]);
        await q.run(`UPDATE members SET last_read = ? WHERE app = ? AND room = ? AND last_read = ?`, [before?.id ?? null, appId, roomId, messageId]);
        const gone = await q.run(`DELETE FROM messages WHERE app = ? AND id = ? AND room = ?`, [appId, messageId, roomId]);
        if (gone === 0) return false;
        await q.run(
          `UPDATE rooms SET message_count = message_count - 1,
             last_message_id = CASE WHEN last_message_id = ?
               THEN (SELECT id FROM messages WHERE app = ? AND room = ? ORDER BY seq DESC LIMIT 1) ELSE last_message_id END
           WHERE app = ? AND id = ?`,
          [messageId, appId, roomId, appId, roomId],
        );
        return true;
      }),
    );
  }
  async clearMessages(appId: string, roomId: string): Promise<number> {
    return this.changingRoom(appId, roomId, () =>
      this.db.tx(async (q) => {
        const gone = await q.run(`DELETE FROM messages WHERE app = ? AND room = ?`, [appId, roomId]);
        await q.run(`UPDATE rooms SET message_count = 0, last_message_id = NULL WHERE app = ? AND id = ?`, [appId, roomId]);
        return gone;
      }),
    );
  }

  // ---- blocks, files, preferences ----------------------------------------------------------

  async putBlock(appId: string, block: BlockRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO blocks (app, blocker, blockee, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (app, blocker, blockee) DO UPDATE SET created_at = excluded.created_at`,
      [appId, block.blocker, block.blockee, block.createdAt],
    );
  }
  async blockersAmong(appId: string, blockee: string, users: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks([...new Set(users)])) {
      const rows = await this.db.all<{ blocker: string }>(
        `SELECT blocker FROM blocks WHERE app = ? AND blockee = ? AND blocker IN (${marks(part.length)})`,
        [appId, blockee, ...part],
      );
      for (const r of rows) found.add(r.blocker);
    }
    return found;
  }
  async getBlock(appId: string, blocker: string, blockee: string): Promise<BlockRecord | undefined> {
    const [row] = await this.db.all<{ created_at: number }>(
      `SELECT created_at FROM blocks WHERE app = ? AND blocker = ? AND blockee = ?`,
      [appId, blocker, blockee],
    );
    return row && { blocker, blockee, createdAt: Number(row.created_at) };
  }
  async deleteBlock(appId: string, blocker: string, blockee: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM blocks WHERE app = ? AND blocker = ? AND blockee = ?`, [appId, blocker, blockee])) > 0;
  }
  async listBlocks(appId: string, blocker: string): Promise<BlockRecord[]> {
    const rows = await this.db.all<{ blockee: string; created_at: number }>(
      `SELECT blockee, created_at FROM blocks WHERE app = ? AND blocker = ? ORDER BY blockee`,
      [appId, blocker],
    );
    return rows.map((r) => ({ blocker, blockee: r.blockee, createdAt: Number(r.created_at) }));
  }

  async putFile(appId: string, file: FileRecord): Promise<void> {
    // sharedIn lives in file_rooms (shareFile), not in the document.
    const { sharedIn: _rows, ...doc } = file;
    await this.db.run(`INSERT INTO files (app, id, doc) VALUES (?, ?, ?) ON CONFLICT (app, id) DO UPDATE SET doc = excluded.doc`, [
      appId, file.id, JSON.stringify(doc),
    ]);
  }
  async getFile(appId: string, fileId: string): Promise<FileRecord | undefined> {
    const [row] = await this.db.all<{ doc: string }>(`SELECT doc FROM files WHERE app = ? AND id = ?`, [appId, fileId]);
    if (!row) return undefined;
    const file = parse<FileRecord>(row.doc);
    const rooms = await this.db.all<{ room: string }>(`SELECT room FROM file_rooms WHERE app = ? AND file = ? ORDER BY room`, [appId, fileId]);
    if (rooms.length > 0) file.sharedIn = rooms.map((r) => r.room);
    return file;
  }
  async deleteFile(appId: string, fileId: string): Promise<boolean> {
    return this.db.tx(async (q) => {
      await q.run(`DELETE FROM file_rooms WHERE app = ? AND file = ?`, [appId, fileId]);
      return (await q.run(`DELETE FROM files WHERE app = ? AND id = ?`, [appId, fileId])) > 0;
    });
  }
  async shareFile(appId: string, fileId: string, roomId: string): Promise<boolean> {
    return this.db.tx(async (q) => {
      const [row] = await q.all<{ id: string }>(`SELECT id FROM files WHERE app = ? AND id = ?${this.db.forUpdate}`, [appId, fileId]);
      if (!row) return false;
      await q.run(`INSERT INTO file_rooms (app, file, room) VALUES (?, ?, ?) ON CONFLICT (app, file, room) DO NOTHING`, [appId, fileId, roomId]);
      return true;
    });
  }

  // ---- delete-for-me, invitations, cross-room listing ----------------------------------------

  async addUserDeletedMessages(appId: string, userId: string, roomId: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.db.tx(async (q) => {
      for (const id of new Set(messageIds)) {
        await q.run(
          `INSERT INTO user_deleted (app, user_id, room, message) VALUES (?, ?, ?, ?) ON CONFLICT (app, user_id, room, message) DO NOTHING`,
          [appId, userId, roomId, id],
        );
      }
    });
  }
  async listUserDeletedMessages(appId: string, userId: string, roomId: string): Promise<string[]> {
    const rows = await this.db.all<{ message: string }>(
      `SELECT message FROM user_deleted WHERE app = ? AND user_id = ? AND room = ?`,
      [appId, userId, roomId],
    );
    return rows.map((r) => r.message);
  }

  async putInvitations(appId: string, invitations: readonly InvitationRecord[]): Promise<void> {
    if (invitations.length === 0) return;
    await this.db.tx(async (q) => {
      for (const inv of invitations) {
        await q.run(
          `INSERT INTO invitations (app, room, invitee, created_at, doc) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (app, room, invitee) DO UPDATE SET created_at = excluded.created_at, doc = excluded.doc`,
          [appId, inv.room, inv.invitee, inv.createdAt, JSON.stringify(inv)],
        );
      }
    });
  }
  async deleteInvitations(appId: string, roomId: string, invitees?: readonly string[]): Promise<InvitationRecord[]> {
    if (invitees?.length === 0) return [];
    const only = invitees ? ` AND invitee IN (${marks(invitees.length)})` : '';
    const params: Param[] = [appId, roomId, ...(invitees ?? [])];
    return this.db.tx(async (q) => {
      const rows = await q.all<{ doc: string }>(`SELECT doc FROM invitations WHERE app = ? AND room = ?${only}${this.db.forUpdate}`, params);
      if (rows.length > 0) await q.run(`DELETE FROM invitations WHERE app = ? AND room = ?${only}`, params);
      return rows.map((r) => parse<InvitationRecord>(r.doc)).sort(byInvitationOrder);
    });
  }
  async listInvitations(appId: string, by: { room: string } | { invitee: string }): Promise<InvitationRecord[]> {
    const [column, value] = 'room' in by ? ['room', by.room] : ['invitee', by.invitee];
    const rows = await this.db.all<{ doc: string }>(`SELECT doc FROM invitations WHERE app = ? AND ${column} = ?`, [appId, value]);
    return rows.map((r) => parse<InvitationRecord>(r.doc)).sort(byInvitationOrder);
  }

  /** An administrator's query: `messages_by_time` (or `messages_by_batch`) range, newest first, `LIMIT`; the count over the same range. */
  async listAppMessages(appId: string, query: AppMessageQuery): Promise<{ total: number; messages: MessageRecord[] }> {
    const where = ['app = ?'];
    const params: Param[] = [appId];
    if (query.batchID !== undefined) where.push('batch_id = ?'), params.push(query.batchID);
    if (query.from !== undefined) where.push('created_at >= ?'), params.push(query.from);
    if (query.to !== undefined) where.push('created_at <= ?'), params.push(query.to);
    const filter = where.join(' AND ');
    const [count] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM messages WHERE ${filter}`, params);
    const rows = await this.db.all<{ doc: string }>(`SELECT doc FROM messages WHERE ${filter} ORDER BY created_at DESC, seq DESC LIMIT ?`, [
      ...params, Math.max(0, query.limit),
    ]);
    return { total: Number(count?.n ?? 0), messages: rows.map((r) => parse<MessageRecord>(r.doc)) };
  }

  async listPrefs(appId: string, userId: string): Promise<PrefRecord[]> {
    const rows = await this.db.all<{ pref_key: string; data: string }>(
      `SELECT pref_key, data FROM prefs WHERE app = ? AND user_id = ? ORDER BY pref_key`,
      [appId, userId],
    );
    return rows.map((r) => ({ key: r.pref_key, data: parse<unknown>(r.data) }));
  }
  async putPref(appId: string, userId: string, pref: PrefRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO prefs (app, user_id, pref_key, data) VALUES (?, ?, ?, ?)
       ON CONFLICT (app, user_id, pref_key) DO UPDATE SET data = excluded.data`,
      [appId, userId, pref.key, JSON.stringify(pref.data ?? null)],
    );
  }
  async deletePref(appId: string, userId: string, key: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM prefs WHERE app = ? AND user_id = ? AND pref_key = ?`, [appId, userId, key])) > 0;
  }

  // ---- group room preferences, quitted rooms ------------------------------------------------

  async updateGroupRoomPref(
    appId: string,
    group: string,
    roomId: string,
    change: (pref: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return this.db.tx(async (q) => {
      // The row exists before it is locked, so two first writers also take turns.
      await q.run(`INSERT INTO group_room_prefs (app, grp, room, data) VALUES (?, ?, ?, '{}') ON CONFLICT (app, grp, room) DO NOTHING`, [appId, group, roomId]);
      const [row] = await q.all<{ data: string }>(`SELECT data FROM group_room_prefs WHERE app = ? AND grp = ? AND room = ?${this.db.forUpdate}`, [appId, group, roomId]);
      const next = change(parse<Record<string, unknown>>(row?.data ?? '{}'));
      await q.run(`UPDATE group_room_prefs SET data = ? WHERE app = ? AND grp = ? AND room = ?`, [JSON.stringify(next), appId, group, roomId]);
      return next;
    });
  }
  async listGroupRoomPrefs(appId: string, group: string): Promise<{ room: string; pref: Record<string, unknown> }[]> {
    const rows = await this.db.all<{ room: string; data: string }>(`SELECT room, data FROM group_room_prefs WHERE app = ? AND grp = ? ORDER BY room`, [appId, group]);
    return rows.map((r) => ({ room: r.room, pref: parse<Record<string, unknown>>(r.data) }));
  }

  async listQuittedRooms(appId: string, userId: string): Promise<QuittedRoom[]> {
    const rows = await this.db.all<{ room: string; quitted_at: number; pref: string }>(
      `SELECT room, quitted_at, pref FROM quitted_rooms WHERE app = ? AND user_id = ? ORDER BY quitted_at DESC, room`,
      [appId, userId],
    );
    return rows.map((r) => ({ roomId: r.room, quittedAt: Number(r.quitted_at), pref: parse<Record<string, unknown>>(r.pref) }));
  }

  // ---- push devices ------------------------------------------------------------------------

  async putDevice(appId: string, device: DeviceRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO devices (app, user_id, type, device_id, token, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (app, user_id, type, device_id) DO UPDATE SET token = excluded.token, created_at = excluded.created_at`,
      [appId, device.userId, device.type, device.deviceId, device.token, device.createdAt],
    );
  }
  async deleteDevice(appId: string, userId: string, type: string, deviceId: string, token?: string): Promise<boolean> {
    const sql = `DELETE FROM devices WHERE app = ? AND user_id = ? AND type = ? AND device_id = ?${token === undefined ? '' : ' AND token = ?'}`;
    return (await this.db.run(sql, [appId, userId, type, deviceId, ...(token === undefined ? [] : [token])])) > 0;
  }
  async listDevices(appId: string, userIds: readonly string[]): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    for (const part of chunks([...new Set(userIds)])) {
      const rows = await this.db.all<{ user_id: string; type: string; device_id: string; token: string; created_at: number | string }>(
        `SELECT user_id, type, device_id, token, created_at FROM devices WHERE app = ? AND user_id IN (${marks(part.length)})`,
        [appId, ...part],
      );
      for (const r of rows) out.push({ userId: r.user_id, type: r.type as DeviceRecord['type'], deviceId: r.device_id, token: r.token, createdAt: Number(r.created_at) });
    }
    return out;
  }

  // ---- outbox ------------------------------------------------------------------------------

  async enqueueOutbox(appId: string, items: readonly OutboxItem[]): Promise<void> {
    if (items.length > 0) await this.insertOutbox(this.db, appId, items);
  }
  /** Inserts items; an id already present is left as it is. */
  private async insertOutbox(q: Queryer, appId: string, items: readonly OutboxItem[]): Promise<void> {
    for (const part of chunks(items)) {
      await q.run(
        `INSERT INTO outbox (${OUTBOX_COLUMNS}) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (app, id) DO NOTHING`,
        part.flatMap((i) => [appId, i.id, i.kind, JSON.stringify(i.payload), i.status, i.attempts, i.nextAt, i.claim ?? null, i.lastError ?? null, i.createdAt, i.updatedAt]),
      );
    }
  }
  /**
   * One statement: the due rows get a claim, an attempt and a lease. On PostgreSQL the rows
   * are picked `FOR UPDATE SKIP LOCKED`, so nodes claiming at once take different rows and
   * never wait for each other; SQLite runs one writer at a time anyway.
   */
  async claimOutbox(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    const lock = this.db.engine === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows = await this.db.all<OutboxRow>(
      `UPDATE outbox SET claim = ? || id, attempts = attempts + 1, next_at = CAST(? AS BIGINT), updated_at = CAST(? AS BIGINT)
       WHERE (app, id) IN (SELECT app, id FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?${lock})
       RETURNING ${OUTBOX_COLUMNS}`,
      [`${newId()}:`, now + leaseMs, now, now, limit],
    );
    return rows.map(outboxItem);
  }
  async settleOutbox(appId: string, id: string, claim: string, outcome: OutboxOutcome, now: number): Promise<boolean> {
    const error = outcome.status === 'delivered' ? (outcome.note ?? null) : outcome.error;
    const sets = ['status = ?', 'claim = NULL', 'updated_at = ?', 'last_error = COALESCE(?, last_error)'];
    const params: Param[] = [outcome.status, now, error];
    if (outcome.status === 'pending') {
      sets.push('next_at = ?');
      params.push(outcome.nextAt);
      if (outcome.payload) {
        sets.push('payload = ?');
        params.push(JSON.stringify(outcome.payload));
      }
    }
    const changed = await this.db.run(
      `UPDATE outbox SET ${sets.join(', ')} WHERE app = ? AND id = ? AND status = 'pending' AND claim = ?`,
      [...params, appId, id, claim],
    );
    if (changed === 0) return false;
    if (outcome.status !== 'pending' && this.pruneDue(appId, now)) await this.pruneOutbox(appId);
    return true;
  }
  /** Pruning costs an index walk of OUTBOX_KEEP_SETTLED rows: once per 100 settles or 10 s per application. */
  private pruneDue(appId: string, now: number): boolean {
    const p = this.outboxPrunes.get(appId) ?? { settles: 0, at: now };
    p.settles++;
    const due = p.settles >= OUTBOX_PRUNE_EVERY || now - p.at >= 10_000;
    if (due) Object.assign(p, { settles: 0, at: now });
    if (this.outboxPrunes.size > 10_000) this.outboxPrunes.clear();
    this.outboxPrunes.set(appId, p);
    return due;
  }
  /** Keeps the newest OUTBOX_KEEP_SETTLED settled rows of the application. */
  private async pruneOutbox(appId: string): Promise<void> {
    const [edge] = await this.db.all<{ updated_at: number | string; id: string }>(
      `SELECT updated_at, id FROM outbox WHERE app = ? AND status <> 'pending' ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET ?`,
      [appId, OUTBOX_KEEP_SETTLED],
    );
    if (!edge) return;
    await this.db.run(
      `DELETE FROM outbox WHERE app = ? AND status <> 'pending' AND (updated_at < ? OR (updated_at = ? AND id <= ?))`,
      [appId, Number(edge.updated_at), Number(edge.updated_at), edge.id],
    );
  }
  async listOutbox(appId: string, limit: number): Promise<OutboxItem[]> {
    const rows = await this.db.all<OutboxRow>(
      `SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE app = ? ORDER BY updated_at DESC, id DESC LIMIT ?`,
      [appId, limit],
    );
    return rows.map(outboxItem);
  }

  ready(): boolean {
    return this.db.ready();
  }
  /** Waits for the messages already accepted, then closes the database. */
  async close(): Promise<void> {
    while (this.pending.length > 0 || this.flushing || this.flushScheduled) await new Promise((r) => setImmediate(r));
    await this.db.close();
  }
}
