import type { ControlMessage } from '../bus/bus.js';
import type {
  AppRecord,
  BlockRecord,
  DeviceRecord,
  OutboxItem,
  OutboxOutcome,
  FileRecord,
  InvitationRecord,
  MemberRoom,
  MessageRecord,
  PrefRecord,
  QuittedRoom,
  RoomRecord,
  TokenRecord,
  UserRecord,
} from '../core/models.js';

/** `listAppMessages`: a time window (creation ms, inclusive), optionally one batch's messages. */
export interface AppMessageQuery {
  from?: number;
  to?: number;
  /** Only messages carrying this `batchID` (`GET /messages/batch`). */
  batchID?: string;
  limit: number;
}
/** A condition on one text field of a user (`listUsers`): `nickname` reads as the id when absent. */
export interface UserCondition {
  field: 'id' | 'nickname' | 'description';
  /** The field is one of these values (exactly). */
  oneOf?: readonly string[];
  /** The field contains this literal text: anywhere, at its start or end, or as a whole; in any case when `foldCase` (`value` then in lower case). */
  text?: { value: string; at: 'anywhere' | 'start' | 'end' | 'whole'; foldCase: boolean };
}
/** `listUsers`' filter: every condition of `all`, and one of `any` when given. */
export interface UserFilter {
  all: readonly UserCondition[];
  any?: readonly UserCondition[];
}

/** `searchMessages`: which messages, how many, and where a previous page stopped. */
export interface MessageSearchQuery {
  /** At most this many messages. */
  limit: number;
  /** Only messages of these types (e.g. the file-like ones); any type when absent. */
  messageTypes?: readonly string[];
  /** Continue after the page that returned this cursor. */
  cursor?: string;
}
/** Settled (delivered or dead) outbox items kept per application for `/admin/deliveries`; older ones are dropped. */
export const OUTBOX_KEEP_SETTLED = 1000;
/** Settled items beyond OUTBOX_KEEP_SETTLED are dropped at least every this many settles (so a few more may be listed). */
export const OUTBOX_PRUNE_EVERY = 100;

/** Which way a history page walks from its anchor. */
export type HistoryDirection = 'older' | 'newer';

export interface HistoryQuery {
  /** Message id to start from; absent = from the newest (older) or oldest (newer) end. */
  anchor?: string;
  direction: HistoryDirection;
  /** Include the anchor itself as the first element (IMKIT SDKs drop `data[0]`). */
  includeAnchor: boolean;
  limit: number;
}

/**
 * The persistence port. Its implementation (store/sql: SQLite embedded, PostgreSQL for
 * clusters) passes the contract suite in test/contract on both engines. Records going in and out are copies: mutating a returned
 * object never changes what is stored.
 *
 * Multi-record changes that must stay consistent are single methods here (`updateRoom`
 * keeps the user→rooms index in step with `members`; `addMessage` moves the room's
 * last-message pointer), so an implementation can make each one atomic.
 */
export interface Store {
  // Applications
  putApp(app: AppRecord): Promise<void>;
  getApp(appId: string): Promise<AppRecord | undefined>;
  getAppByApiKeyHash(hash: string): Promise<AppRecord | undefined>;
  listApps(): Promise<AppRecord[]>;
  /**
   * Atomic read-modify-write of an application, like `updateRoom`: `change` gets a copy and
   * returns the new record (its id is kept), or undefined to leave it. Resolves to the stored
   * record afterwards; undefined when there is no such application. `change` may run more
   * than once (a store that compares and sets re-reads on conflict), so it must be pure.
   */
  updateApp(appId: string, change: (a: AppRecord) => AppRecord | undefined): Promise<AppRecord | undefined>;
  /** Removes the application and everything it owns. */
  deleteApp(appId: string): Promise<boolean>;

  // Users
  putUser(appId: string, user: UserRecord): Promise<void>;
  getUser(appId: string, userId: string): Promise<UserRecord | undefined>;
  /** Atomic read-modify-write of a user (same contract as `updateApp`); undefined when missing. */
  updateUser(appId: string, userId: string, change: (u: UserRecord) => UserRecord | undefined): Promise<UserRecord | undefined>;
  /**
   * `updateUser`, or when there is no such user, creates the one `create` returns; a user
   * created concurrently by another request gets `change` instead, so an upsert loses no write.
   */
  upsertUser(appId: string, userId: string, change: (u: UserRecord) => UserRecord | undefined, create: () => UserRecord): Promise<UserRecord>;
  /** Same order as `userIds`; unknown ids give undefined. */
  getUsers(appId: string, userIds: readonly string[]): Promise<(UserRecord | undefined)[]>;
  /**
   * Users in creation order (ties by id), `skip`ped and `limit`ed, and how many match. A filter
   * is answered by the database (the id conditions by primary key; text conditions a pass over
   * the application's users in SQL, never records parsed in process).
   */
  listUsers(appId: string, skip: number, limit: number, filter?: UserFilter): Promise<{ total: number; users: UserRecord[] }>;
  /** The application's user groups (users with `group`), oldest first, at most `limit`, and how many there are. */
  listGroups(appId: string, limit: number): Promise<{ total: number; users: UserRecord[] }>;
  /** Atomic read-modify-write, like `updateRoom`; undefined when the user does not exist. */
  updateUser(appId: string, userId: string, change: (u: UserRecord) => UserRecord | undefined): Promise<UserRecord | undefined>;
  /** Removes the user, their tokens and push devices (room membership is the caller's business). */
  deleteUser(appId: string, userId: string): Promise<boolean>;

  // User tokens, by hash
  putToken(appId: string, token: TokenRecord): Promise<void>;
  getToken(appId: string, hash: string): Promise<TokenRecord | undefined>;
  /** The user's tokens (records only: tokens themselves are never stored), oldest first. */
  listTokens(appId: string, userId: string): Promise<TokenRecord[]>;
  /** Deletes one token of the user (by hash) or, without a hash, all of them; returns what went. */
  deleteTokens(appId: string, userId: string, hash?: string): Promise<TokenRecord[]>;

  // Rooms
  /** false when a room with that id already exists (nothing is written). */
  createRoom(appId: string, room: RoomRecord): Promise<boolean>;
  getRoom(appId: string, roomId: string): Promise<RoomRecord | undefined>;
  getRooms(appId: string, roomIds: readonly string[]): Promise<(RoomRecord | undefined)[]>;
  /**
   * The room as one user's request needs it (the send path): every field, but `memberState`
   * is replaced by that user's entry (`member`). It costs O(1) in the room's size instead of copying or
   * reading every member's state, which matters for rooms of thousands.
   */
  getRoomForUser(appId: string, roomId: string, userId: string): Promise<MemberRoom | undefined>;
  /**
   * The room as `getRoomForUser` gives it, for sending a message into it. It may come from
   * this node's cache without a query (PostgreSQL, where other nodes write); `version` is then
   * the room's version when it was read, and `addMessage` given it stores the message only if
   * the room is still at that version, else fails with ROOM_CHANGED: read again and retry.
   * Its last-message and last-read fields may be behind other nodes' sends.
   */
  getRoomForSend(appId: string, roomId: string, userId: string): Promise<{ room: MemberRoom; version?: number } | undefined>;
  /**
   * Atomic read-modify-write. `change` gets a copy and returns the new record, or undefined to
   * leave the room as it is. Resolves to the stored record afterwards (undefined if no room).
   */
  updateRoom(
    appId: string,
    roomId: string,
    change: (room: RoomRecord) => RoomRecord | undefined,
    outbox?: (before: RoomRecord, after: RoomRecord) => OutboxItem[],
  ): Promise<RoomRecord | undefined>;
  /** Records a member's last-read message (O(1)); false when the user is not a member. */
  setLastRead(appId: string, roomId: string, userId: string, messageId: string): Promise<boolean>;
  /** Deletes the room and its messages. */
  deleteRoom(appId: string, roomId: string): Promise<boolean>;
  /** How many rooms the application has (for /admin/stats). */
  countRooms(appId: string): Promise<number>;
  /** Ids of the rooms the user is a member of. */
  userRoomIds(appId: string, userId: string): Promise<string[]>;

  // Messages
  /**
   * Appends to the room's history, makes it the room's last message and marks it read for
   * its sender (one's own message is never unread). Insert-only: resolves false and writes
   * nothing when the application already has a message with that id, or the room is gone.
   * `outbox` items (webhook calls, push fan-out) are enqueued in the same atomic step, and
   * only when the message is written. `encoded`: `JSON.stringify(message)` when the caller
   * already made it (the core does, to check the size), so it is not encoded twice.
   */
  addMessage(appId: string, message: MessageRecord, outbox?: OutboxItem[], encoded?: string, roomVersion?: number): Promise<boolean>;
  getMessage(appId: string, messageId: string): Promise<MessageRecord | undefined>;
  /** Replaces a stored message (same id, same room); false if it is gone. */
  replaceMessage(appId: string, message: MessageRecord): Promise<boolean>;
  /**
   * Atomic read-modify-write of a message still in its room's history (same contract as
   * `updateApp`; its id and room are kept); undefined when it is gone.
   */
  updateMessage(appId: string, messageId: string, change: (m: MessageRecord) => MessageRecord | undefined): Promise<MessageRecord | undefined>;
  /** undefined when the anchor is not a message of this room. */
  listMessages(appId: string, roomId: string, query: HistoryQuery): Promise<MessageRecord[] | undefined>;
  countMessages(appId: string, roomId: string): Promise<number>;
  /**
   * Messages of the room created or changed (edit, recall, reaction, hiding) after `since`
   * (`GET /rooms/:id/count?timeInMS=`). Reads each message of the room: O(n).
   */
  countMessagesChangedSince(appId: string, roomId: string, since: number): Promise<number>;
  /**
   * The application's messages across rooms, newest first (by creation time), with creation time
   * in [from, to] and the batch id when given, and how many match (`GET /admin/messages`,
   * `GET /messages/batch`): an index range, not a scan of history.
   */
  listAppMessages(appId: string, query: AppMessageQuery): Promise<{ total: number; messages: MessageRecord[] }>;
  /**
   * Messages of the given rooms whose searchable text contains the keyword (both normalised,
   * core/search-text.ts: a substring match, CJK included), newest first, answered from a
   * full-text index kept in step with every write of a message (send, edit, recall, delete,
   * room deletion), so every node finds the same. `cursor` is set when more may follow.
   */
  searchMessages(appId: string, roomIds: readonly string[], keyword: string, query: MessageSearchQuery): Promise<{ messages: MessageRecord[]; cursor?: string }>;
  /**
   * Removes one message from its room's history; false if it is not there. Members whose
   * last-read message it was now point at the message before it (so their unread count stays).
   */
  deleteMessage(appId: string, roomId: string, messageId: string): Promise<boolean>;
  /** Removes every message of a room; returns how many went. */
  clearMessages(appId: string, roomId: string): Promise<number>;
  /**
   * Messages after `messageId` (all of them when undefined or unknown), leaving out those
   * sent by `exceptSenders` (whom the reader blocked).
   */
  countMessagesAfter(appId: string, roomId: string, messageId: string | undefined, exceptSenders?: readonly string[]): Promise<number>;

  /** Marks messages as deleted for one user only ("delete for me"); repeats change nothing. */
  addUserDeletedMessages(appId: string, userId: string, roomId: string, messageIds: readonly string[]): Promise<void>;
  /** The ids `addUserDeletedMessages` recorded for the user in the room (any order). */
  listUserDeletedMessages(appId: string, userId: string, roomId: string): Promise<string[]>;

  // Room invitations (one per room and invitee)
  /** Adds or refreshes invitations. */
  putInvitations(appId: string, invitations: readonly InvitationRecord[]): Promise<void>;
  /** Removes the room's invitations of these invitees (all of the room's without a list); returns what went. */
  deleteInvitations(appId: string, roomId: string, invitees?: readonly string[]): Promise<InvitationRecord[]>;
  /** A room's pending invitations, or a user's, oldest first (ties by room, then invitee). */
  listInvitations(appId: string, by: { room: string } | { invitee: string }): Promise<InvitationRecord[]>;

  // Personal blocks
  putBlock(appId: string, block: BlockRecord): Promise<void>;
  getBlock(appId: string, blocker: string, blockee: string): Promise<BlockRecord | undefined>;
  deleteBlock(appId: string, blocker: string, blockee: string): Promise<boolean>;
  /** Everyone `blocker` has blocked. */
  listBlocks(appId: string, blocker: string): Promise<BlockRecord[]>;
  /** Which of `users` blocked `blockee` (one query for a room's members, not one per member). */
  blockersAmong(appId: string, blockee: string, users: readonly string[]): Promise<Set<string>>;

  // Uploaded files' metadata
  putFile(appId: string, file: FileRecord): Promise<void>;
  getFile(appId: string, fileId: string): Promise<FileRecord | undefined>;
  deleteFile(appId: string, fileId: string): Promise<boolean>;
  /**
   * Adds a room to the file's `sharedIn` set (a message referencing it was sent there);
   * adding it again changes nothing. false when there is no such file.
   */
  shareFile(appId: string, fileId: string, roomId: string): Promise<boolean>;

  // Per-user preferences
  listPrefs(appId: string, userId: string): Promise<PrefRecord[]>;
  putPref(appId: string, userId: string, pref: PrefRecord): Promise<void>;
  deletePref(appId: string, userId: string, key: string): Promise<boolean>;

  // Room preferences shared by a group (`/roomPrefs/:room/group/:group`)
  /**
   * Atomic read-modify-write of a group's preference for a room: `change` gets a copy of the
   * stored one (`{}` when none) and returns the new one, which is stored and returned.
   */
  updateGroupRoomPref(
    appId: string,
    group: string,
    roomId: string,
    change: (pref: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
  /** A group's room preferences, by room id. */
  listGroupRoomPrefs(appId: string, group: string): Promise<{ room: string; pref: Record<string, unknown> }[]>;

  /**
   * Rooms the user left or was removed from and has not joined again, most recent first: what
   * `updateRoom` recorded when they stopped being a member (the time is the room's `updatedAt`
   * of that change, the preference theirs at the time). `deleteRoom` forgets the room's entries.
   */
  listQuittedRooms(appId: string, userId: string): Promise<QuittedRoom[]>;

  // Push devices (IMKIT `POST /me/subscribe`)
  /** Adds or replaces the user's device of that type and device id. */
  putDevice(appId: string, device: DeviceRecord): Promise<void>;
  /** Removes it; with `token`, only while it still has that token (a provider's "invalid token"). */
  deleteDevice(appId: string, userId: string, type: string, deviceId: string, token?: string): Promise<boolean>;
  /** Devices of the given users. */
  listDevices(appId: string, userIds: readonly string[]): Promise<DeviceRecord[]>;

  // Outbox: outgoing webhook calls and push notifications (see src/delivery/worker.ts)
  /** Enqueues pending items; an id already present is left as it is. */
  enqueueOutbox(appId: string, items: readonly OutboxItem[]): Promise<void>;
  /**
   * Atomically claims up to `limit` pending items of any application due at `now`: each gets
   * a new `claim`, one more attempt and `nextAt = now + leaseMs`, so no other caller gets it
   * until the lease ends. Claimed items are returned as they are now stored.
   */
  claimOutbox(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]>;
  /** Ends a claim; false (nothing written) when the item was reclaimed since or is gone. */
  settleOutbox(appId: string, id: string, claim: string, outcome: OutboxOutcome, now: number): Promise<boolean>;
  /** The application's most recently changed items, newest first. */
  listOutbox(appId: string, limit: number): Promise<OutboxItem[]>;

  /**
   * Told of every control event this node receives (changes made on any node), so that an
   * implementation that caches records can drop the ones the change makes stale.
   */
  onControl?(message: ControlMessage): void;

  /** Health of the backing service (false while the database cannot be reached). */
  ready(): boolean;
  close(): Promise<void>;
}

/** The order `listInvitations` answers in. */
export function byInvitationOrder(a: InvitationRecord, b: InvitationRecord): number {
  return a.createdAt - b.createdAt || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0) || (a.invitee < b.invitee ? -1 : a.invitee > b.invitee ? 1 : 0);
}
