/**
 * The Redis key layout, in one place. `P` is the deployment prefix (ROOMCAST_REDIS_PREFIX,
 * default `rc`).
 *
 * Global (one slot, tag `{g}`):
 *   P:global:{g}:apps          hash  appId → AppRecord JSON
 *   P:global:{g}:apikeys       hash  sha256(API key) → appId
 *   P:global:{g}:appkeys       hash  appId → sha256(API key)   (to drop the old index entry)
 *
 * Per application (one slot per app, tag `{A}` where A is the URI-encoded app id):
 *   P:app:{A}:users            hash  userId → UserRecord JSON
 *   P:app:{A}:user-order       zset  userId, score = first-insert sequence (listUsers paging)
 *   P:app:{A}:user-seq         string counter for user-order
 *   P:app:{A}:tokens           hash  sha256(token) → TokenRecord JSON
 *   P:app:{A}:user-tokens:<u>  set   token hashes of user u
 *   P:app:{A}:room:<r>         hash  the room, split so messages never rewrite its JSON:
 *                                    doc  = RoomRecord JSON without memberState/lastMessageId/lastActivityAt
 *                                    ms:<u> = MemberState JSON of member u, without lastRead
 *                                    lr:<u> = u's lastRead, last = lastMessageId, at = lastActivityAt
 *                                    v = version (every write bumps it), seq = message counter
 *   P:app:{A}:history:<r>      zset  message ids of room r, score = seq (send order)
 *   P:app:{A}:messages         hash  messageId → MessageRecord JSON
 *   P:app:{A}:user-rooms:<u>   set   ids of the rooms u is a member of
 *   P:app:{A}:prefs:<u>        hash  pref key → PrefRecord JSON
 *   P:app:{A}:blocks:<u>       hash  blockee → BlockRecord JSON (u is the blocker)
 *   P:app:{A}:files            hash  fileId → FileRecord JSON (without sharedIn)
 *   P:app:{A}:file-rooms:<f>   set   rooms file f was shared in (FileRecord.sharedIn)
 *   P:app:{A}:invitations:<r> hash  invitee → InvitationRecord JSON (room r's pending invitations)
 *   P:app:{A}:invited:<u>      set   rooms user u has a pending invitation to
 *   P:app:{A}:user-deleted:<u>:<r>  set  ids of messages user u deleted for themselves in room r
 *                                    (both ids URI-encoded, so the pair is unambiguous)
 *
 * Ids other than the app id are the last segment of a key, after a fixed type word, so they
 * need no escaping; the app id is encoded so it cannot contain braces, `:` or glob characters.
 * Because every key of an application shares its hash slot, Lua scripts may derive other
 * keys of the same application from the `P:app:{A}:` base they are given (Redis Cluster
 * allows undeclared keys of the slot a script runs on).
 */

/** URI encoding plus `*`, so the result has no `{}`, `:`, `%`-ambiguity or glob metacharacters. */
export function encodeKeyPart(value: string): string {
  return encodeURIComponent(value).replace(/\*/g, '%2A');
}

/** Escapes glob metacharacters for SCAN MATCH. */
export function globEscape(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

export class RedisKeys {
  readonly apps: string;
  readonly apiKeys: string;
  readonly appKeys: string;

  constructor(readonly prefix: string) {
    this.apps = `${prefix}:global:{g}:apps`;
    this.apiKeys = `${prefix}:global:{g}:apikeys`;
    this.appKeys = `${prefix}:global:{g}:appkeys`;
  }

  /** `P:app:{A}:` — every key of the application starts with it. */
  base(appId: string): string {
    return `${this.prefix}:app:{${encodeKeyPart(appId)}}:`;
  }

  tenant(appId: string) {
    const b = this.base(appId);
    return {
      base: b,
      users: `${b}users`,
      userOrder: `${b}user-order`,
      userSeq: `${b}user-seq`,
      tokens: `${b}tokens`,
      userTokens: (userId: string) => `${b}user-tokens:${userId}`,
      room: (roomId: string) => `${b}room:${roomId}`,
      history: (roomId: string) => `${b}history:${roomId}`,
      messages: `${b}messages`,
      userRooms: (userId: string) => `${b}user-rooms:${userId}`,
      prefs: (userId: string) => `${b}prefs:${userId}`,
      blocks: (blocker: string) => `${b}blocks:${blocker}`,
      files: `${b}files`,
      fileRooms: (fileId: string) => `${b}file-rooms:${fileId}`,
      invitations: (roomId: string) => `${b}invitations:${roomId}`,
      invited: (userId: string) => `${b}invited:${userId}`,
      userDeleted: (userId: string, roomId: string) => `${b}user-deleted:${encodeKeyPart(userId)}:${encodeKeyPart(roomId)}`,
    };
  }

  /** Pattern matching every key of the application (for deleting it). */
  tenantPattern(appId: string): string {
    return `${globEscape(this.base(appId))}*`;
  }
}
