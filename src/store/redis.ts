import { Cluster } from 'ioredis';
import {
  closeClient,
  connectClient,
  createRedisClient,
  guarded,
  type RedisClient,
} from '../cluster/redis-client.js';
import type {
  AppRecord,
  BlockRecord,
  FileRecord,
  InvitationRecord,
  MemberState,
  MessageRecord,
  PrefRecord,
  RoomRecord,
  TokenRecord,
  UserRecord,
} from '../core/models.js';
import type { Logger } from '../observability/logger.js';
import { RedisKeys } from './redis-keys.js';
import * as S from './redis-scripts.js';
import { type AppMessageQuery, type HistoryQuery, byInvitationOrder, matchesAppQuery, type Store } from './store.js';

export interface RedisStoreOptions {
  /** Key prefix (ROOMCAST_REDIS_PREFIX); lets several deployments share one Redis. */
  prefix?: string;
  /** How often `updateRoom` retries when another writer changed the room meanwhile. */
  maxUpdateAttempts?: number;
}

type Fields = Record<string, string>;

const parse = <T>(json: string | null | undefined): T | undefined => (json ? (JSON.parse(json) as T) : undefined);

/** RoomRecord → the room hash's fields (see redis-keys.ts). */
function roomToFields(room: RoomRecord): Fields {
  const { memberState, lastMessageId, lastActivityAt, ...doc } = room;
  const fields: Fields = { doc: JSON.stringify(doc), at: String(lastActivityAt) };
  if (lastMessageId !== undefined) fields.last = lastMessageId;
  for (const [userId, state] of Object.entries(memberState)) {
    const { lastRead, ...rest } = state;
    fields[`ms:${userId}`] = JSON.stringify(rest);
    if (lastRead !== undefined) fields[`lr:${userId}`] = lastRead;
  }
  return fields;
}

/** The room hash's fields → RoomRecord (a fresh object every call). */
function roomFromFields(fields: Fields): RoomRecord {
  const memberState: Record<string, MemberState> = {};
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('ms:')) continue;
    const userId = field.slice(3);
    const state = JSON.parse(value) as MemberState;
    const lastRead = fields[`lr:${userId}`];
    if (lastRead !== undefined) state.lastRead = lastRead;
    memberState[userId] = state;
  }
  const room = { ...(JSON.parse(fields.doc!) as RoomRecord), memberState, lastActivityAt: Number(fields.at) };
  if (fields.last !== undefined) room.lastMessageId = fields.last;
  return room;
}

/** Bookkeeping fields of the room hash that are not part of the record. */
const ROOM_INTERNAL = new Set(['v', 'seq']);

/**
 * The Store port on Redis (ioredis): standalone, Sentinel or Cluster. Same behaviour as
 * MemoryStore, checked by the same contract suite. Multi-key changes are Lua scripts;
 * `updateRoom` runs the caller's change in JS and commits it with a compare-and-set on the
 * room's version, retrying when another writer got there first (so `change` may run more
 * than once and must not have side effects). While Redis is unreachable every call fails
 * at once with STORE_UNAVAILABLE (503).
 */
export class RedisStore implements Store {
  private keys: RedisKeys;
  /** room key → its last-read `doc` field and that document parsed (see getRoomForUser). */
  private parsedDocs = new Map<string, { doc: string; room: RoomRecord }>();
  private maxUpdateAttempts: number;

  constructor(
    readonly client: RedisClient,
    options: RedisStoreOptions = {},
  ) {
    this.keys = new RedisKeys(options.prefix ?? 'rc');
    this.maxUpdateAttempts = options.maxUpdateAttempts ?? 100;
  }

  /** Connects to `url` and waits until Redis answers (or throws after `timeoutMs`). */
  static async open(url: string, options: RedisStoreOptions & { name?: string; timeoutMs?: number; log?: Logger } = {}): Promise<RedisStore> {
    const client = createRedisClient(url, { name: options.name ?? 'roomcast:store', autoPipelining: true, log: options.log });
    try {
      await connectClient(client, url, options.timeoutMs ?? 10_000);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return new RedisStore(client, options);
  }

  private run<T>(operation: () => Promise<T>): Promise<T> {
    return guarded(this.client, operation);
  }

  // ---- applications ------------------------------------------------------------------------

  putApp(app: AppRecord): Promise<void> {
    const k = this.keys;
    return this.run(async () => {
      await S.PUT_APP.run(this.client, [k.apps, k.apiKeys, k.appKeys], [app.id, JSON.stringify(app), app.apiKeyHash]);
    });
  }
  getApp(appId: string): Promise<AppRecord | undefined> {
    return this.run(async () => parse<AppRecord>(await this.client.hget(this.keys.apps, appId)));
  }
  getAppByApiKeyHash(hash: string): Promise<AppRecord | undefined> {
    return this.run(async () => parse<AppRecord>((await S.APP_BY_KEY.run(this.client, [this.keys.apps, this.keys.apiKeys], [hash])) as string | null));
  }
  listApps(): Promise<AppRecord[]> {
    return this.run(async () => {
      const apps = (await this.client.hvals(this.keys.apps)).map((json) => JSON.parse(json) as AppRecord);
      return apps.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }
  deleteApp(appId: string): Promise<boolean> {
    const k = this.keys;
    return this.run(async () => {
      const removed = (await S.DELETE_APP.run(this.client, [k.apps, k.apiKeys, k.appKeys], [appId])) as number;
      await this.deleteMatching(k.tenantPattern(appId));
      return removed === 1;
    });
  }

  /** SCAN + UNLINK on every master (all keys of one app live in one slot, so on one master). */
  private async deleteMatching(pattern: string): Promise<void> {
    const client: unknown = this.client;
    const nodes: RedisClient[] = client instanceof Cluster ? client.nodes('master') : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (found.length > 0) await node.unlink(...found);
      } while (cursor !== '0');
    }
  }

  // ---- users -------------------------------------------------------------------------------

  putUser(appId: string, user: UserRecord): Promise<void> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      await S.PUT_USER.run(this.client, [t.users, t.userOrder, t.userSeq], [user.id, JSON.stringify(user)]);
    });
  }
  getUser(appId: string, userId: string): Promise<UserRecord | undefined> {
    return this.run(async () => parse<UserRecord>(await this.client.hget(this.keys.tenant(appId).users, userId)));
  }
  getUsers(appId: string, userIds: readonly string[]): Promise<(UserRecord | undefined)[]> {
    if (userIds.length === 0) return Promise.resolve([]);
    return this.run(async () => (await this.client.hmget(this.keys.tenant(appId).users, ...userIds)).map((j) => parse<UserRecord>(j)));
  }
  listUsers(appId: string, skip: number, limit: number): Promise<{ total: number; users: UserRecord[] }> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const [total, values] = (await S.LIST_USERS.run(this.client, [t.users, t.userOrder], [Math.max(0, skip), Math.max(0, limit)])) as [number, (string | null)[]];
      return { total, users: values.filter((v): v is string => !!v).map((v) => JSON.parse(v) as UserRecord) };
    });
  }
  deleteUser(appId: string, userId: string): Promise<boolean> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.DELETE_USER.run(this.client, [t.users, t.userOrder, t.tokens], [t.base, userId])) === 1);
  }

  // ---- tokens ------------------------------------------------------------------------------

  putToken(appId: string, token: TokenRecord): Promise<void> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      await S.PUT_TOKEN.run(this.client, [t.tokens], [t.base, token.hash, JSON.stringify(token), token.userId]);
    });
  }
  getToken(appId: string, hash: string): Promise<TokenRecord | undefined> {
    return this.run(async () => parse<TokenRecord>(await this.client.hget(this.keys.tenant(appId).tokens, hash)));
  }
  deleteTokens(appId: string, userId: string, hash?: string): Promise<TokenRecord[]> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const gone = (await S.DELETE_TOKENS.run(this.client, [t.tokens, t.userTokens(userId)], [hash === undefined ? '0' : '1', hash ?? ''])) as (string | null)[];
      return gone
        .filter((v): v is string => !!v)
        .map((v) => JSON.parse(v) as TokenRecord)
        .sort((a, b) => a.createdAt - b.createdAt);
    });
  }

  // ---- rooms -------------------------------------------------------------------------------

  createRoom(appId: string, room: RoomRecord): Promise<boolean> {
    const t = this.keys.tenant(appId);
    const fields = Object.entries(roomToFields(room)).flat();
    const members = [...new Set(room.members)];
    return this.run(async () => {
      const created = await S.CREATE_ROOM.run(this.client, [t.room(room.id)], [t.base, room.id, fields.length / 2, ...fields, members.length, ...members]);
      return created === 1;
    });
  }
  getRoom(appId: string, roomId: string): Promise<RoomRecord | undefined> {
    return this.run(async () => {
      const fields = await this.client.hgetall(this.keys.tenant(appId).room(roomId));
      return fields.doc === undefined ? undefined : roomFromFields(fields);
    });
  }
  getRoomForUser(appId: string, roomId: string, userId: string): Promise<RoomRecord | undefined> {
    return this.run(async () => {
      const key = this.keys.tenant(appId).room(roomId);
      const [doc, at, last, state, lastRead] = await this.client.hmget(key, 'doc', 'at', 'last', `ms:${userId}`, `lr:${userId}`);
      if (doc === null || doc === undefined) return undefined;
      // The send path reads the same room again and again: parse its document once per change.
      let parsed = this.parsedDocs.get(key);
      if (parsed?.doc !== doc) {
        if (this.parsedDocs.size >= 10_000) this.parsedDocs.clear();
        parsed = { doc, room: JSON.parse(doc) as RoomRecord };
        this.parsedDocs.set(key, parsed);
      }
      const base = parsed.room;
      const room: RoomRecord = {
        ...base,
        members: base.members.slice(),
        managers: base.managers.slice(),
        roomTags: base.roomTags.slice(),
        banned: base.banned && { ...base.banned },
        memberState: {},
        lastActivityAt: Number(at),
      };
      if (last !== null && last !== undefined) room.lastMessageId = last;
      if (state !== null && state !== undefined) {
        const member = JSON.parse(state) as MemberState;
        if (lastRead !== null && lastRead !== undefined) member.lastRead = lastRead;
        room.memberState[userId] = member;
      }
      return room;
    });
  }
  getRooms(appId: string, roomIds: readonly string[]): Promise<(RoomRecord | undefined)[]> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const all = await Promise.all(roomIds.map((id) => this.client.hgetall(t.room(id))));
      return all.map((fields) => (fields.doc === undefined ? undefined : roomFromFields(fields)));
    });
  }
  updateRoom(
    appId: string,
    roomId: string,
    change: (room: RoomRecord) => RoomRecord | undefined,
  ): Promise<RoomRecord | undefined> {
    const t = this.keys.tenant(appId);
    const key = t.room(roomId);
    return this.run(async () => {
      for (let attempt = 1; attempt <= this.maxUpdateAttempts; attempt++) {
        const stored = await this.client.hgetall(key);
        if (stored.doc === undefined) return undefined;
        const before = roomFromFields(stored);
        const next = change(roomFromFields(stored));
        if (!next) return before;
        const fields = roomToFields(next);
        const set: string[] = [];
        for (const [f, v] of Object.entries(fields)) if (stored[f] !== v) set.push(f, v);
        const del = Object.keys(stored).filter((f) => !ROOM_INTERNAL.has(f) && !(f in fields));
        const kept = new Set(next.members);
        const had = new Set(before.members);
        const added = [...kept].filter((m) => !had.has(m));
        const removed = [...had].filter((m) => !kept.has(m));
        const args = [t.base, roomId, stored.v ?? '', set.length / 2, ...set, del.length, ...del, added.length, ...added, removed.length, ...removed];
        if ((await S.UPDATE_ROOM.run(this.client, [key], args)) === 1) return roomFromFields(fields);
        // Another writer changed the room since it was read: read again and re-apply.
        if (attempt > 3) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)));
      }
      throw new Error(`updateRoom: room ${roomId} kept changing; gave up after ${this.maxUpdateAttempts} attempts`);
    });
  }
  setLastRead(appId: string, roomId: string, userId: string, messageId: string): Promise<boolean> {
    const key = this.keys.tenant(appId).room(roomId);
    return this.run(async () => (await S.SET_LAST_READ.run(this.client, [key], [userId, messageId])) === 1);
  }
  deleteRoom(appId: string, roomId: string): Promise<boolean> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.DELETE_ROOM.run(this.client, [t.room(roomId), t.messages, t.history(roomId)], [t.base, roomId])) === 1);
  }
  countRooms(appId: string): Promise<number> {
    return this.run(async () => Number((await this.client.get(`${this.keys.tenant(appId).base}room-count`)) ?? 0));
  }
  userRoomIds(appId: string, userId: string): Promise<string[]> {
    return this.run(() => this.client.smembers(this.keys.tenant(appId).userRooms(userId)));
  }

  // ---- messages ----------------------------------------------------------------------------

  addMessage(appId: string, message: MessageRecord): Promise<void> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const added = await S.ADD_MESSAGE.run(this.client, [t.room(message.room), t.messages, t.history(message.room)], [
        message.id,
        JSON.stringify(message),
        String(message.createdAt),
        message.sender === undefined ? '0' : '1',
        message.sender ?? '',
      ]);
      if (added !== 1) throw new Error(`addMessage: room ${message.room} does not exist`);
    });
  }
  getMessage(appId: string, messageId: string): Promise<MessageRecord | undefined> {
    return this.run(async () => parse<MessageRecord>(await this.client.hget(this.keys.tenant(appId).messages, messageId)));
  }
  replaceMessage(appId: string, message: MessageRecord): Promise<boolean> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.REPLACE_MESSAGE.run(this.client, [t.messages, t.history(message.room)], [message.id, JSON.stringify(message)])) === 1);
  }
  listMessages(appId: string, roomId: string, q: HistoryQuery): Promise<MessageRecord[] | undefined> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const page = (await S.LIST_MESSAGES.run(this.client, [t.history(roomId), t.messages], [
        q.direction === 'older' ? '1' : '0',
        q.anchor === undefined ? '0' : '1',
        q.anchor ?? '',
        q.includeAnchor ? '1' : '0',
        Math.max(0, Math.floor(q.limit)),
      ])) as string[] | null;
      if (page === null) return undefined;
      return page.filter((v) => v !== '').map((v) => JSON.parse(v) as MessageRecord);
    });
  }
  countMessages(appId: string, roomId: string): Promise<number> {
    return this.run(() => this.client.zcard(this.keys.tenant(appId).history(roomId)));
  }
  countMessagesAfter(appId: string, roomId: string, messageId: string | undefined): Promise<number> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.COUNT_AFTER.run(this.client, [t.history(roomId)], [messageId === undefined ? '0' : '1', messageId ?? ''])) as number);
  }
  deleteMessage(appId: string, roomId: string, messageId: string): Promise<boolean> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.DELETE_MESSAGE.run(this.client, [t.room(roomId), t.messages, t.history(roomId)], [messageId])) === 1);
  }
  clearMessages(appId: string, roomId: string): Promise<number> {
    const t = this.keys.tenant(appId);
    return this.run(async () => (await S.CLEAR_MESSAGES.run(this.client, [t.room(roomId), t.messages, t.history(roomId)], [])) as number);
  }

  // ---- personal blocks ---------------------------------------------------------------------

  putBlock(appId: string, block: BlockRecord): Promise<void> {
    return this.run(async () => {
      await this.client.hset(this.keys.tenant(appId).blocks(block.blocker), block.blockee, JSON.stringify(block));
    });
  }
  getBlock(appId: string, blocker: string, blockee: string): Promise<BlockRecord | undefined> {
    return this.run(async () => parse<BlockRecord>(await this.client.hget(this.keys.tenant(appId).blocks(blocker), blockee)));
  }
  deleteBlock(appId: string, blocker: string, blockee: string): Promise<boolean> {
    return this.run(async () => (await this.client.hdel(this.keys.tenant(appId).blocks(blocker), blockee)) === 1);
  }
  listBlocks(appId: string, blocker: string): Promise<BlockRecord[]> {
    return this.run(async () => (await this.client.hvals(this.keys.tenant(appId).blocks(blocker))).map((v) => JSON.parse(v) as BlockRecord));
  }

  listAppMessages(appId: string, query: AppMessageQuery): Promise<{ total: number; messages: MessageRecord[] }> {
    // An administrator's query: one HSCAN pass over the application's messages.
    return this.run(async () => {
      const matching: MessageRecord[] = [];
      let cursor = '0';
      do {
        const [next, flat] = await this.client.hscan(this.keys.tenant(appId).messages, cursor, 'COUNT', 1000);
        cursor = next;
        for (let i = 1; i < flat.length; i += 2) {
          const m = JSON.parse(flat[i]!) as MessageRecord;
          if (matchesAppQuery(m, query)) matching.push(m);
        }
      } while (cursor !== '0');
      matching.sort((a, b) => b.createdAt - a.createdAt);
      return { total: matching.length, messages: matching.slice(0, query.limit) };
    });
  }

  addUserDeletedMessages(appId: string, userId: string, roomId: string, messageIds: readonly string[]): Promise<void> {
    return this.run(async () => {
      if (messageIds.length > 0) await this.client.sadd(this.keys.tenant(appId).userDeleted(userId, roomId), ...messageIds);
    });
  }
  listUserDeletedMessages(appId: string, userId: string, roomId: string): Promise<string[]> {
    return this.run(() => this.client.smembers(this.keys.tenant(appId).userDeleted(userId, roomId)));
  }

  putInvitations(appId: string, invitations: readonly InvitationRecord[]): Promise<void> {
    const keys = this.keys.tenant(appId);
    return this.run(async () => {
      if (invitations.length === 0) return;
      const multi = this.client.multi();
      for (const inv of invitations) {
        multi.hset(keys.invitations(inv.room), inv.invitee, JSON.stringify(inv));
        multi.sadd(keys.invited(inv.invitee), inv.room);
      }
      await multi.exec();
    });
  }
  deleteInvitations(appId: string, roomId: string, invitees?: readonly string[]): Promise<InvitationRecord[]> {
    const keys = this.keys.tenant(appId);
    return this.run(async () => {
      // One script: read, delete and unindex together, so two cancellations cannot both report one invitation.
      const raw = (await S.DELETE_INVITATIONS.run(this.client, [keys.invitations(roomId)], [keys.base, roomId, ...(invitees ?? [])])) as string[];
      return raw.map((v) => JSON.parse(v) as InvitationRecord);
    });
  }
  listInvitations(appId: string, by: { room: string } | { invitee: string }): Promise<InvitationRecord[]> {
    const keys = this.keys.tenant(appId);
    return this.run(async () => {
      let values: (string | null)[];
      if ('room' in by) values = await this.client.hvals(keys.invitations(by.room));
      else {
        const rooms = await this.client.smembers(keys.invited(by.invitee));
        values = await Promise.all(rooms.map((r) => this.client.hget(keys.invitations(r), by.invitee)));
      }
      return values.flatMap((v) => (v ? [JSON.parse(v) as InvitationRecord] : [])).sort(byInvitationOrder);
    });
  }

  // ---- files -------------------------------------------------------------------------------

  putFile(appId: string, file: FileRecord): Promise<void> {
    const { sharedIn: _derived, ...record } = file;
    return this.run(async () => {
      await this.client.hset(this.keys.tenant(appId).files, file.id, JSON.stringify(record));
    });
  }
  getFile(appId: string, fileId: string): Promise<FileRecord | undefined> {
    const keys = this.keys.tenant(appId);
    return this.run(async () => {
      const [json, rooms] = await Promise.all([this.client.hget(keys.files, fileId), this.client.smembers(keys.fileRooms(fileId))]);
      const file = parse<FileRecord>(json);
      if (file && rooms.length > 0) file.sharedIn = rooms.sort();
      return file;
    });
  }
  deleteFile(appId: string, fileId: string): Promise<boolean> {
    const keys = this.keys.tenant(appId);
    return this.run(async () => {
      const [gone] = await Promise.all([this.client.hdel(keys.files, fileId), this.client.del(keys.fileRooms(fileId))]);
      return gone === 1;
    });
  }
  shareFile(appId: string, fileId: string, roomId: string): Promise<boolean> {
    const keys = this.keys.tenant(appId);
    // One script, so a file deleted meanwhile gets no orphan set (both keys share the app's slot).
    return this.run(async () => (await S.SHARE_FILE.run(this.client, [keys.files, keys.fileRooms(fileId)], [fileId, roomId])) === 1);
  }

  // ---- preferences -------------------------------------------------------------------------

  listPrefs(appId: string, userId: string): Promise<PrefRecord[]> {
    return this.run(async () => (await this.client.hvals(this.keys.tenant(appId).prefs(userId))).map((v) => JSON.parse(v) as PrefRecord));
  }
  putPref(appId: string, userId: string, pref: PrefRecord): Promise<void> {
    return this.run(async () => {
      await this.client.hset(this.keys.tenant(appId).prefs(userId), pref.key, JSON.stringify(pref));
    });
  }
  deletePref(appId: string, userId: string, key: string): Promise<boolean> {
    return this.run(async () => (await this.client.hdel(this.keys.tenant(appId).prefs(userId), key)) === 1);
  }

  ready(): boolean {
    return this.client.status === 'ready';
  }
  close(): Promise<void> {
    return closeClient(this.client);
  }
}
