import type { MessageRecord, QuittedRoom, RoomRecord, TokenRecord, UserRecord } from './models.js';
import { ownValue } from './own.js';

/**
 * IMKIT wire shapes. Real SDKs depend on these details: `_id` and `id` on every object,
 * `clientType: "user"` on clients (a direct room renders empty without it), populated
 * `sender`/`members`/`lastMessage`, and `…MS` millisecond timestamps beside ISO ones.
 */

export type ClientView = Record<string, unknown> & { _id: string; id: string };
export type MessageView = Record<string, unknown> & { _id: string; id: string };
export type RoomView = Record<string, unknown> & { _id: string; id: string };

/** ISO dates, memoised: the same few timestamps are formatted for every view of a message. */
const isoCache = new Map<number, string>();
export function iso(ms: number): string {
  let text = isoCache.get(ms);
  if (text === undefined) {
    if (isoCache.size >= 4096) isoCache.clear();
    text = new Date(ms).toISOString();
    isoCache.set(ms, text);
  }
  return text;
}

export function clientView(user: UserRecord | undefined, id: string): ClientView {
  if (!user) return { _id: id, id, nickname: id, clientType: 'user' };
  return {
    ...user.custom,
    _id: user.id,
    id: user.id,
    nickname: user.nickname ?? user.id,
    avatarUrl: user.avatarUrl ?? '',
    description: user.description ?? '',
    clientType: user.group ? 'group' : 'user',
    ...(user.group ? { members: user.group.members } : {}),
    mute: user.mute ?? [],
    createdAt: iso(user.createdAt),
    updatedAt: iso(user.updatedAt),
    updatedAtMS: user.updatedAt,
  };
}

/** What only the user sees of their own account (`GET /me`, client/Me-Get.md): the push switch. */
export function ownAccountFields(user: UserRecord | undefined): { notificationEnabled: boolean } {
  return { notificationEnabled: user?.notificationDisabled !== true };
}

/**
 * A revoked token as `/me/logout` and `/me/logout-others` answer it (client/Me-Logout.md):
 * `token` only when the caller presented it (tokens are stored as hashes). Tokens are never
 * changed after they are made, so `updatedAt` is their creation time.
 */
export function revokedTokenView(t: TokenRecord, token?: string): Record<string, unknown> {
  return {
    ...(token !== undefined ? { token } : {}),
    updatedAt: iso(t.createdAt),
    createdAt: iso(t.createdAt),
    expirationDate: iso(t.expiresAt),
    expirationDateMS: t.expiresAt,
  };
}

/** `pinned`: whether it is its room's pinned message (the room's `pinnedMessageId` decides). */
export function messageView(
  msg: MessageRecord,
  sender: ClientView | null,
  reply?: MessageView,
  pinned = false,
): MessageView {
  return {
    ...msg.fields,
    _id: msg.id,
    id: msg.id,
    room: msg.room,
    sender,
    messageType: msg.messageType,
    message: msg.message,
    ...(reply ? { reply } : {}),
    // `pinned` is the current name, `isPined` what older clients read.
    pinned,
    isPined: pinned,
    messageTime: iso(msg.createdAt),
    messageTimeMS: msg.createdAt,
    createdAt: iso(msg.createdAt),
    createdAtMS: msg.createdAt,
    updatedAt: iso(msg.updatedAt),
    updatedAtMS: msg.updatedAt,
    ...(msg.editedAt !== undefined ? { editedAt: iso(msg.editedAt), editedAtMS: msg.editedAt } : {}),
  };
}

export interface RoomViewParts {
  room: RoomRecord;
  members: ClientView[];
  owner?: ClientView;
  lastMessage?: MessageView;
  pinnedMessage?: MessageView;
  /** Viewer-specific fields, present when the room is shown to one user. */
  viewer?: ViewerFields;
}

export interface ViewerFields {
  unread: number;
  isSuperuser: boolean;
  muted: boolean;
  /** The viewer's own room preference (`/roomPrefs`). */
  pref?: Record<string, unknown>;
  /** Direct rooms: when the viewer blocked the peer, and when the peer blocked the viewer. */
  didBlockAt?: number;
  wasBlockedAt?: number;
}

/** What every room shape starts with: its ids, name, cover, description and type. */
function roomIdentity(room: RoomRecord) {
  return {
    _id: room.id,
    id: room.id,
    name: room.name ?? '',
    cover: room.cover ?? '',
    description: room.description ?? '',
    roomType: room.roomType,
  };
}

export function roomView({ room, members, owner, lastMessage, pinnedMessage, viewer }: RoomViewParts): RoomView {
  return {
    ...roomIdentity(room),
    owner: owner ?? null,
    managers: room.managers,
    members,
    memberProperties: room.members.map((client) => ({
      ...ownValue(room.memberState, client)?.properties,
      client,
      lastRead: ownValue(room.memberState, client)?.lastRead ?? null,
      role: ownValue(room.memberState, client)?.role ?? 'member',
    })),
    roomTags: room.roomTags,
    extParams: room.extParams ?? '',
    status: room.status,
    isPublic: room.isPublic === true,
    systemMessage: room.systemMessage,
    invitationRequired: room.invitationRequired ?? false,
    // IMKIT shows the webhook to members: a named key (see /admin/delivery) keeps a URL private.
    webhook: room.webhook ?? null,
    botMode: room.botMode ?? false,
    botState: room.botState ?? null,
    lastMessage: lastMessage ?? null,
    pinnedMessage: pinnedMessage ?? null,
    createdTime: iso(room.createdAt),
    createdTimeMS: room.createdAt,
    updatedAt: iso(room.updatedAt),
    updatedAtMS: room.updatedAt,
    ...(viewer ? viewerFields(viewer) : {}),
  };
}

/** A room the viewer quitted (`GET /rooms/quitted`, room/Room-List-quitted-rooms.md): no members or messages. */
export function quittedRoomView(room: RoomRecord, quit: QuittedRoom): Record<string, unknown> {
  return {
    ...roomIdentity(room),
    roomTags: room.roomTags,
    encrypted: false,
    pref: { ...quit.pref, quittedAt: iso(quit.quittedAt), quittedAtMS: quit.quittedAt },
    createdTimeMS: room.createdAt,
  };
}

function viewerFields(v: ViewerFields): Record<string, unknown> {
  return {
    unread: v.unread,
    isSuperuser: v.isSuperuser,
    muted: v.muted,
    pref: v.pref ?? {},
    ...(v.didBlockAt !== undefined ? { didBlockAt: iso(v.didBlockAt), didBlockAtMS: v.didBlockAt } : {}),
    ...(v.wasBlockedAt !== undefined ? { wasBlockedAt: iso(v.wasBlockedAt), wasBlockedAtMS: v.wasBlockedAt } : {}),
  };
}
