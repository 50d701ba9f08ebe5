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
  DeviceRecord,
  FileRecord,
  MemberState,
  MessageRecord,
  OutboxItem,
  OutboxOutcome,
  PrefRecord,
  RoomRecord,
  TokenRecord,
  UserRecord,
} from '../core/models.js';
import type { Logger } from '../observability/logger.js';
import { RedisKeys } from './redis-keys.js';
import * as S from './redis-scripts.js';
import { newId } from '../core/secrets.js';
import { OUTBOX_KEEP_SETTLED, type HistoryQuery, type Store } from './store.js';

export interface RedisStoreOptions {
  /** Key prefix (ROOMCAST_REDIS_PREFIX); lets several deployments share one Redis. */
  prefix?: string;
  /** How often `updateRoom` retries when another writer changed the room meanwhile. */
  maxUpdateAttempts?: number;
}

type Fields = Record<string, string>;

/** How often the outbox claim also looks at applications missing from the `outbox-apps` hint. */
const OUTBOX_SWEEP_MS = 10_000;

/** The outbox item split as stored: the part Lua never decodes, and the state it updates. */
function outboxArgs(items: readonly OutboxItem[]): string[] {
  const args = [String(items.length)];
  for (const { status, attempts, nextAt, claim, lastError, updatedAt, ...rest } of items) {
    args.push(rest.id, JSON.stringify(rest), JSON.stringify({ status, attempts, nextAt, claim, lastError, updatedAt }), String(nextAt));
  }
  return args;
}
const outboxItem = (item: string, state: string): OutboxItem => ({ ...JSON.parse(item), ...JSON.parse(state) }) as OutboxItem;

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
    outbox?: (before: RoomRecord, after: RoomRecord) => OutboxItem[],
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
        const items = outbox?.(before, roomFromFields(fields)) ?? [];
        const args = [t.base, roomId, stored.v ?? '', set.length / 2, ...set, del.length, ...del, added.length, ...added, removed.length, ...removed, ...outboxArgs(items)];
        if ((await S.UPDATE_ROOM.run(this.client, [key], args)) === 1) {
          if (items.length > 0) await this.hintOutbox(appId);
          return roomFromFields(fields);
        }
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

  addMessage(appId: string, message: MessageRecord, outbox: OutboxItem[] = []): Promise<void> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const added = await S.ADD_MESSAGE.run(this.client, [t.room(message.room), t.messages, t.history(message.room)], [
        message.id,
        JSON.stringify(message),
        String(message.createdAt),
        message.sender === undefined ? '0' : '1',
        message.sender ?? '',
        t.base,
        ...outboxArgs(outbox),
      ]);
      if (added !== 1) throw new Error(`addMessage: room ${message.room} does not exist`);
      if (outbox.length > 0) await this.hintOutbox(appId);
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

  // ---- files -------------------------------------------------------------------------------

  putFile(appId: string, file: FileRecord): Promise<void> {
    return this.run(async () => {
      await this.client.hset(this.keys.tenant(appId).files, file.id, JSON.stringify(file));
    });
  }
  getFile(appId: string, fileId: string): Promise<FileRecord | undefined> {
    return this.run(async () => parse<FileRecord>(await this.client.hget(this.keys.tenant(appId).files, fileId)));
  }
  deleteFile(appId: string, fileId: string): Promise<boolean> {
    return this.run(async () => (await this.client.hdel(this.keys.tenant(appId).files, fileId)) === 1);
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

  // ---- push devices ------------------------------------------------------------------------

  putDevice(appId: string, device: DeviceRecord): Promise<void> {
    return this.run(async () => {
      await this.client.hset(this.keys.tenant(appId).devices(device.userId), `${device.type}:${device.deviceId}`, JSON.stringify(device));
    });
  }
  deleteDevice(appId: string, userId: string, type: string, deviceId: string, token?: string): Promise<boolean> {
    const key = this.keys.tenant(appId).devices(userId);
    return this.run(async () => (await S.DELETE_DEVICE.run(this.client, [key], [`${type}:${deviceId}`, token === undefined ? '0' : '1', token ?? ''])) === 1);
  }
  listDevices(appId: string, userIds: readonly string[]): Promise<DeviceRecord[]> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const all = await Promise.all([...new Set(userIds)].map((u) => this.client.hvals(t.devices(u))));
      return all.flat().map((v) => JSON.parse(v) as DeviceRecord);
    });
  }

  // ---- outbox ------------------------------------------------------------------------------

  private lastSweep = 0;

  /** Tells every node's worker that this application has pending items (see outbox-apps). */
  private async hintOutbox(appId: string): Promise<void> {
    await this.client.sadd(this.keys.outboxApps, appId);
  }
  enqueueOutbox(appId: string, items: readonly OutboxItem[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      await S.ENQUEUE_OUTBOX.run(this.client, [t.outbox], [t.base, ...outboxArgs(items)]);
      await this.hintOutbox(appId);
    });
  }
  claimOutbox(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    return this.run(async () => {
      let appIds = await this.client.smembers(this.keys.outboxApps);
      if (now - this.lastSweep >= OUTBOX_SWEEP_MS) {
        this.lastSweep = now;
        appIds = [...new Set([...appIds, ...(await this.client.hkeys(this.keys.apps))])];
      }
      const claimed: OutboxItem[] = [];
      for (const appId of appIds) {
        if (claimed.length >= limit) break;
        const t = this.keys.tenant(appId);
        const out = (await S.CLAIM_OUTBOX.run(this.client, [t.outboxDue, t.outboxState, t.outbox, t.outboxRecent], [
          String(now), String(limit - claimed.length), String(leaseMs), `${newId()}-`,
        ])) as (number | string)[];
        for (let i = 1; i < out.length; i += 3) claimed.push(outboxItem(String(out[i + 1]), String(out[i + 2])));
        // Nothing left to do here: drop the hint (an enqueue racing this is found by the sweep).
        if (out[0] === 0) await this.client.srem(this.keys.outboxApps, appId);
      }
      return claimed;
    });
  }
  settleOutbox(appId: string, id: string, claim: string, outcome: OutboxOutcome, now: number): Promise<boolean> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      let itemJson = '';
      if (outcome.status === 'pending' && outcome.payload) {
        const stored = await this.client.hget(t.outbox, id);
        if (!stored) return false;
        itemJson = JSON.stringify({ ...JSON.parse(stored), payload: outcome.payload });
      }
      const args = [
        id, claim, outcome.status, String(now),
        outcome.status === 'pending' ? String(outcome.nextAt) : '0',
        outcome.status === 'delivered' ? (outcome.note ?? '') : outcome.error,
        itemJson, String(OUTBOX_KEEP_SETTLED),
      ];
      return (await S.SETTLE_OUTBOX.run(this.client, [t.outboxState, t.outboxDue, t.outboxRecent, t.outboxSettled, t.outbox], args)) === 1;
    });
  }
  listOutbox(appId: string, limit: number): Promise<OutboxItem[]> {
    const t = this.keys.tenant(appId);
    return this.run(async () => {
      const ids = await this.client.zrevrange(t.outboxRecent, 0, limit - 1);
      if (ids.length === 0) return [];
      const [items, states] = await Promise.all([this.client.hmget(t.outbox, ...ids), this.client.hmget(t.outboxState, ...ids)]);
      return ids.flatMap((_, i) => (items[i] && states[i] ? [outboxItem(items[i]!, states[i]!)] : []));
    });
  }

  ready(): boolean {
    return this.client.status === 'ready';
  }
  close(): Promise<void> {
    return closeClient(this.client);
  }
}
