/**
 * Stored records. These are the server's own shapes; the IMKIT wire shapes (with `_id`/`id`,
 * populated members, `…MS` timestamps) are built from them in `views.ts`.
 * Times are epoch milliseconds.
 */

export interface ClientKeyRecord {
  /** Key id, the JWT's `jti`: revocation is "the app's current kid no longer matches". */
  kid: string;
  /** The JWT itself; public by design, so it may be stored and shown. */
  token: string;
  createdAt: number;
}

export interface AppRecord {
  id: string;
  name: string;
  /** Hostnames the chat server is reached at for this app; empty = any host. */
  domains: string[];
  /** sha256 (base64url) of the API key; the key itself is shown once, at creation. */
  apiKeyHash: string;
  /** base64url HMAC secret: signs client keys and server-issued user tokens. */
  signingSecret: string;
  /**
   * base64url HMAC secret of signed file links, drawn again with every new client key (so
   * revoking and regenerating the client key also voids every outstanding link). Records
   * made before it existed sign with a key derived from `signingSecret`.
   */
  fileSecret?: string;
  /** Exactly one client key at a time, or none after revocation. */
  clientKey: ClientKeyRecord | null;
  /** Web origins allowed to use the client key (browser requests); empty or absent = any. */
  allowedOrigins?: string[];
  /** IMKIT runtime configuration (`/config`): announcement, censorship keywords, flags. */
  config?: Record<string, unknown>;
  /** Webhooks and push providers (absent until first configured). */
  delivery?: DeliverySettings;
  createdAt: number;
}

export interface UserRecord {
  id: string;
  nickname?: string;
  avatarUrl?: string;
  description?: string;
  /** Rooms whose notifications the user muted. */
  mute?: string[];
  /** `/me/notification/disable`: no push notification of messages at all (absent: enabled). */
  notificationDisabled?: boolean;
  lastLoginAt?: number;
  lastActiveAt?: number;
  /** Custom fields sent on upsert (anything not modelled above). */
  custom: Record<string, unknown>;
  /** Set on a user group (`/admin/groups`): a virtual client whose members share its rooms. */
  group?: { members: string[] };
  createdAt: number;
  updatedAt: number;
}

export interface TokenRecord {
  /** sha256 (base64url) of the token; tokens themselves are never stored. */
  hash: string;
  userId: string;
  expiresAt: number;
  /** true for JWTs this server minted, false for tokens the customer assigned. */
  issued: boolean;
  createdAt: number;
}

export type RoomType = 'direct' | 'group';

export interface MemberState {
  /** Id of the last message this member has read. */
  lastRead?: string;
  role?: 'admin' | 'member';
  joinedAt: number;
  /** Custom member properties (`PUT /rooms/:id/member/:client`), shown in `memberProperties`. */
  properties?: Record<string, unknown>;
  /** The member's own room preference (`POST /roomPrefs/:room`), shown only to them as `pref`. */
  pref?: Record<string, unknown>;
  /** "Delete all for me": messages sent up to this time are gone from this member's history. */
  clearedAt?: number;
  /** User groups in the room through which this user is a member (absent: added in person). */
  viaGroups?: string[];
  /** With `viaGroups`: also added in person, so staying when the groups go. */
  direct?: boolean;
}

/** A room a user left or was removed from (`GET /rooms/quitted`). */
export interface QuittedRoom {
  roomId: string;
  quittedAt: number;
  /** The user's own room preference when they left. */
  pref: Record<string, unknown>;
}

export interface RoomRecord {
  id: string;
  name?: string;
  cover?: string;
  description?: string;
  roomType: RoomType;
  owner?: string;
  managers: string[];
  /** Member ids in join order; `memberState` has an entry for each. */
  members: string[];
  memberState: Record<string, MemberState>;
  roomTags: string[];
  /** Kept as the JSON string IMKIT clients expect. */
  extParams?: string;
  /** IMKIT's `isPublic` (group rooms): anyone in the application may join. Absent = private. */
  isPublic?: boolean;
  /** 1 active, 0 frozen. */
  status: 0 | 1;
  systemMessage: boolean;
  lastMessageId?: string;
  /** The room's one pinned message. */
  pinnedMessageId?: string;
  /** Senders whose messages a superuser hid from the other members (`hide-by-sender-in-room`). */
  hiddenSenders?: string[];
  /** Joining needs an invitation (`invitationRequired`); adding members invites them instead. */
  invitationRequired?: boolean;
  /** Members banned from the room (kept as members, but without access): user id → ban. */
  banned?: Record<string, { by?: string; at: number }>;
  /** IMKIT room webhook: a URL, or the key of one of the application's named webhooks. */
  webhook?: string;
  /** Bot mode: the webhook's replies post messages and move `botState`. */
  botMode?: boolean;
  /** The room's bot state, moved by the webhook's `toBotState`. */
  botState?: string;
  /** Time of the last message (or creation): the `lastMessage` sort key. */
  lastActivityAt: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * A room read for one user's request (`Store.getRoomForUser`): every field of the room, but
 * only that user's member state, so it costs O(1) in the room's size. Its own type, so it
 * can never be taken for a whole room (views and membership changes need `RoomRecord`).
 */
export interface MemberRoom extends Omit<RoomRecord, 'memberState'> {
  /** Whose member state this is ('' for the API key, which is nobody's member). */
  viewer: string;
  /** The viewer's member state; undefined when they are not a member. */
  member?: MemberState;
}

export interface MessageRecord {
  id: string;
  room: string;
  /** Sender's user id; undefined for administrator system messages. */
  sender?: string;
  messageType: string;
  message: unknown;
  /** Optional IMKIT fields kept as sent (extra, reply id, mentions, media urls, …). */
  fields: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  editedAt?: number;
}

export interface PrefRecord {
  key: string;
  data: unknown;
}

/** A personal block: `blocker` no longer hears from `blockee`. */
export interface BlockRecord {
  blocker: string;
  blockee: string;
  createdAt: number;
}

/** An uploaded file's metadata; the bytes live in the file storage port. */
export interface FileRecord {
  id: string;
  bucket: string;
  filename: string;
  mimetype: string;
  length: number;
  md5: string;
  /** Uploader's user id; undefined when uploaded with the API key. */
  client?: string;
  /** Room the file was shared in, if any (decides who may download it). */
  room?: string;
  extra: Record<string, unknown>;
  uploadedAt: number;
  /**
   * Rooms in which a message referencing the file was sent (`Store.shareFile`): their members
   * may read it too. Filled in by the store on read; not written by `putFile`.
   */
  sharedIn?: string[];
}

/** A pending invitation to a room (`invitationRequired`); accepted by joining. */
export interface InvitationRecord {
  room: string;
  invitee: string;
  /** Who invited; undefined for the API key. */
  inviter?: string;
  createdAt: number;
}

/** The push services a device token belongs to, as IMKIT's `POST /me/subscribe` names them. */
export type DeviceType = 'ios' | 'android' | 'fcm' | 'web' | 'ios-voip';

/** A device registered for push notifications (one per user, type and device id). */
export interface DeviceRecord {
  userId: string;
  type: DeviceType;
  deviceId: string;
  token: string;
  createdAt: number;
}

/**
 * Webhook, push provider and signing settings of one application (API key: `/admin/delivery`).
 * Private keys are stored as given and never shown again.
 */
export interface DeliverySettings {
  /** HMAC-SHA256 key of webhook signatures (base64url). */
  webhookSecret: string;
  /** The default webhook of rooms that have none. */
  webhook?: string;
  /** Named webhooks: a room's `webhook` may be one of these keys instead of a URL. */
  webhooks?: Record<string, string>;
  /** IMKIT's generic external push: one POST per message batch to the customer's endpoint. */
  externalPush?: { url: string };
  /** FCM HTTP v1 with a service account (the JSON key file's fields). */
  fcm?: { projectId: string; clientEmail: string; privateKey: string; privateKeyId?: string; tokenUri?: string };
  /** APNs token-based authentication (.p8 key). */
  apns?: { keyId: string; teamId: string; privateKey: string; topic: string; sandbox?: boolean };
}

export type OutboxKind = 'webhook' | 'push-fanout' | 'push';
export type OutboxStatus = 'pending' | 'delivered' | 'dead';

/**
 * One outgoing call (a webhook request, a push batch, or a fan-out job that makes push
 * batches), written to the store with its cause and delivered by the outbox worker.
 */
export interface OutboxItem {
  /** Unique per application; enqueueing an id that exists changes nothing (idempotent retries). */
  id: string;
  appId: string;
  kind: OutboxKind;
  payload: Record<string, unknown>;
  status: OutboxStatus;
  /** Delivery attempts started so far. */
  attempts: number;
  /** When it is due (pending) or when its lease ends (claimed). */
  nextAt: number;
  /** Changes on every claim; only the current claim may settle the item. */
  claim?: string;
  lastError?: string;
  createdAt: number;
  updatedAt: number;
}

/** How a claimed item ends: delivered, back to pending (retry at `nextAt`), or dead-lettered. */
export type OutboxOutcome =
  /** `note`: something worth showing though the call itself succeeded (a bot reply refused). */
  | { status: 'delivered'; note?: string }
  | { status: 'pending'; nextAt: number; error: string; payload?: Record<string, unknown> }
  | { status: 'dead'; error: string };
