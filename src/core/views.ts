import type { MessageRecord, RoomRecord, UserRecord } from './models.js';

/**
 * IMKIT wire shapes. Real SDKs depend on these details: `_id` and `id` on every object,
 * `clientType: "user"` on clients (a direct room renders empty without it), populated
 * `sender`/`members`/`lastMessage`, and `…MS` millisecond timestamps beside ISO ones.
 */

export type ClientView = Record<string, unknown> & { _id: string; id: string };
export type MessageView = Record<string, unknown> & { _id: string; id: string };
export type RoomView = Record<string, unknown> & { _id: string; id: string };

const iso = (ms: number): string => new Date(ms).toISOString();

export function clientView(user: UserRecord | undefined, id: string): ClientView {
  if (!user) return { _id: id, id, nickname: id, clientType: 'user' };
  return {
    ...user.custom,
    _id: user.id,
    id: user.id,
    nickname: user.nickname ?? user.id,
    avatarUrl: user.avatarUrl ?? '',
    description: user.description ?? '',
    clientType: 'user',
    createdAt: iso(user.createdAt),
    updatedAt: iso(user.updatedAt),
    updatedAtMS: user.updatedAt,
  };
}

export function messageView(
  msg: MessageRecord,
  sender: ClientView | null,
  reply?: MessageView,
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
  /** Viewer-specific fields, present when the room is shown to one user. */
  viewer?: { unread: number; isSuperuser: boolean };
}

export function roomView({ room, members, owner, lastMessage, viewer }: RoomViewParts): RoomView {
  return {
    _id: room.id,
    id: room.id,
    name: room.name ?? '',
    cover: room.cover ?? '',
    description: room.description ?? '',
    roomType: room.roomType,
    owner: owner ?? null,
    managers: room.managers,
    members,
    memberProperties: room.members.map((client) => ({
      client,
      lastRead: room.memberState[client]?.lastRead ?? null,
      role: room.memberState[client]?.role ?? 'member',
    })),
    roomTags: room.roomTags,
    extParams: room.extParams ?? '',
    status: room.status,
    systemMessage: room.systemMessage,
    lastMessage: lastMessage ?? null,
    createdTime: iso(room.createdAt),
    createdTimeMS: room.createdAt,
    updatedAt: iso(room.updatedAt),
    updatedAtMS: room.updatedAt,
    ...(viewer ? { unread: viewer.unread, isSuperuser: viewer.isSuperuser } : {}),
  };
}
