import type { Actor, UserActor } from './identity.js';
import { Errors } from './errors.js';
import type { MemberRoom, MemberState, RoomRecord } from './models.js';

/** What access rules read about a room: a whole room, or one read for the acting user. */
export type RoomAccess = RoomRecord | MemberRoom;

/** A user's member state in either kind of room (own properties only: ids are user input). */
export function memberStateOf(room: RoomAccess, userId: string): MemberState | undefined {
  if ('viewer' in room) return room.viewer === userId ? room.member : undefined;
  return Object.hasOwn(room.memberState, userId) ? room.memberState[userId] : undefined;
}

/**
 * Who may do what: the one permission table. Every route and socket handler names its
 * operation here and calls `authorize`; no other module decides access.
 *
 * - `admin`:             API key only (what the client-key document reserves for it)
 * - `user`:              a user (client key + token); the API key too, acting as administrator
 * - `self`:              a user acting on their own account; the API key has no "me"
 * - `member`:            the API key, or a member of the room who is not banned from it
 * - `superuser`:         the API key, or the room's owner or admins (member role `admin` or `managers`)
 * - `author`:            the resource's author only (a message's sender)
 * - `authorOrAdmin`:     the resource's author (a file's uploader), or the API key
 * - `authorOrSuperuser`: the resource's author, or a superuser of its room
 * - `authorOrMember`:    the resource's author, or a member of its room, or the API key
 *
 * A member banned from a room is refused every room rule (BANNED_FROM_ROOM).
 */
export type Rule =
  | 'admin' | 'user' | 'self' | 'member' | 'superuser'
  | 'author' | 'authorOrAdmin' | 'authorOrSuperuser' | 'authorOrMember';

/** Something with an author: a message (its sender) or a file (its uploader). */
export interface Authored {
  sender?: string;
}

export const PERMISSIONS = {
  // Reserved for the API key by the client-key document
  'users.manage': 'admin',
  'tokens.manage': 'admin',
  'app.settings': 'admin',
  /** Key usage (`/admin/usage`, `/admin/stats`) and connection counts. */
  'usage.read': 'admin',
  'connections.read': 'admin',
  'messages.crossRoom': 'admin',
  /** Batch send into rooms: the API key anywhere; a user only into rooms they may post to (each checked as a send). */
  'messages.batch': 'user',
  /** Batch send with `sender` or `receiver`, as IMKIT's docs describe it: the API key. */
  'messages.batchAsAnyone': 'admin',
  'messages.sendAsAnyone': 'admin',
  /** `GET /config`: the runtime configuration is readable by users (writes are `app.settings`). */
  'config.read': 'user',
  // A user's own account
  'me.read': 'self',
  'me.update': 'self',
  'me.block': 'self',
  /** `/me/logout`, `/me/logout-others`: the caller's own tokens and push devices. */
  'me.logout': 'self',
  /** `/me/notification/enable|disable`: the caller's own push switch. */
  'me.notification': 'self',
  // Rooms
  'rooms.create': 'user',
  'rooms.list': 'self',
  /** Joining makes the caller a member: only a user can be one (the API key is nobody). */
  'rooms.join': 'self',
  'rooms.read': 'member',
  /** `GET /rooms/:id/exists`: any user may ask (a direct room is reported only to whom may read it). */
  'rooms.exists': 'user',
  'rooms.update': 'superuser',
  'rooms.updateOwnership': 'superuser',
  'rooms.freeze': 'superuser',
  'rooms.delete': 'superuser',
  'rooms.mute': 'member',
  /** Which rooms' live events a socket hears: those it could read. */
  'rooms.listen': 'member',
  'members.add': 'member',
  'members.removeOthers': 'superuser',
  'members.leave': 'member',
  'members.setRole': 'superuser',
  /** Custom member properties: the member themselves, or a superuser. */
  'members.setProperty': 'authorOrSuperuser',
  'members.ban': 'superuser',
  // Messages
  'messages.send': 'member',
  /** Sending into a frozen room. */
  'messages.sendFrozen': 'superuser',
  'messages.read': 'member',
  /** `GET /messages/recent`: the newest messages of the caller's own rooms. */
  'messages.recent': 'self',
  'messages.markRead': 'self',
  'messages.typing': 'member',
  'messages.edit': 'author',
  'messages.recall': 'authorOrSuperuser',
  'messages.pin': 'superuser',
  'messages.delete': 'superuser',
  'messages.react': 'member',
  /** Hiding a message from the other members (`isHidden`). */
  'messages.hide': 'superuser',
  // Files
  'files.upload': 'user',
  'files.uploadToRoom': 'member',
  'files.read': 'authorOrMember',
  'files.delete': 'authorOrAdmin',
  // Offline delivery
  /** `/me/subscribe`, `/me/unsubscribe`: a user for their devices, the API key for anyone's (`clientId`). */
  'push.subscribe': 'user',
  'push.send': 'admin',
  /** A room's `webhook` and `botMode` decide where room content is sent: the API key only. */
  'rooms.webhook': 'admin',
  'deliveries.read': 'admin',
} as const satisfies Record<string, Rule>;

export type Operation = keyof typeof PERMISSIONS;

export function isSuperuser(actor: Actor, room: RoomAccess): boolean {
  if (actor.kind === 'admin') return true;
  const id = actor.userId;
  return room.owner === id || room.managers.includes(id) || memberStateOf(room, id)?.role === 'admin';
}

export function isBanned(userId: string, room: Pick<RoomRecord, 'banned'>): boolean {
  return room.banned !== undefined && Object.hasOwn(room.banned, userId);
}

/** A member with access: in the room and not banned from it (the API key always). */
export function isMember(actor: Actor, room: RoomAccess): boolean {
  return actor.kind === 'admin' || (memberStateOf(room, actor.userId) !== undefined && !isBanned(actor.userId, room));
}

/** Whether `op` is allowed, without throwing (for filters such as which rooms a socket hears). */
export function allows(actor: Actor, op: Operation, room?: RoomAccess, resource?: Authored): boolean {
  try {
    authorize(actor, op, room, resource);
    return true;
  } catch {
    return false;
  }
}

/** Throws the refusal for `op`, or returns normally. Room rules need the room; author rules the resource. */
export function authorize(actor: Actor, op: Operation, room?: RoomAccess, resource?: Authored): void {
  const rule: Rule = PERMISSIONS[op];
  switch (rule) {
    case 'admin':
      if (actor.kind !== 'admin') throw Errors.apiKeyRequired(describe(op));
      return;
    case 'user':
      return;
    case 'self':
      requireUser(actor);
      return;
    case 'member':
      requireAccess(actor, op, room);
      return;
    case 'superuser':
      requireAccess(actor, op, room);
      if (!isSuperuser(actor, room)) throw Errors.notRoomSuperuser();
      return;
    case 'author':
      requireAccess(actor, op, room);
      if (!isAuthor(actor, op, resource)) throw Errors.notMessageSender(false);
      return;
    case 'authorOrSuperuser':
      requireAccess(actor, op, room);
      if (isSuperuser(actor, room) || isAuthor(actor, op, resource)) return;
      throw Errors.notMessageSender(true);
    case 'authorOrAdmin':
      if (actor.kind === 'admin' || isAuthor(actor, op, resource)) return;
      throw Errors.notUploader();
    case 'authorOrMember':
      if (actor.kind === 'admin' || isAuthor(actor, op, resource)) return;
      if (!room) throw Errors.notUploader();
      requireAccess(actor, op, room);
      return;
  }
}

function isAuthor(actor: Actor, op: Operation, resource: Authored | undefined): boolean {
  if (!resource) throw new Error(`authorize(${op}) needs the resource`);
  return actor.kind === 'user' && resource.sender !== undefined && resource.sender === actor.userId;
}

function requireUser(actor: Actor): asserts actor is UserActor {
  if (actor.kind !== 'user') {
    throw Errors.userTokenRequired();
  }
}

function requireAccess(actor: Actor, op: Operation, room: RoomAccess | undefined): asserts room is RoomAccess {
  if (!room) throw new Error(`authorize(${op}) needs a room`);
  if (actor.kind === 'admin') return;
  if (memberStateOf(room, actor.userId) === undefined) throw Errors.notRoomMember();
  if (isBanned(actor.userId, room)) throw Errors.bannedFromRoom();
}

/** For operations that act as a user (`self`): the user, or USER_TOKEN_REQUIRED for the API key. */
export function asUser(actor: Actor, op: Operation): UserActor {
  authorize(actor, op);
  requireUser(actor);
  return actor;
}

const DESCRIPTIONS: Partial<Record<Operation, string>> = {
  'users.manage': 'Creating, updating or deleting users',
  'tokens.manage': 'Managing user tokens',
  'app.settings': 'Changing application settings',
  'usage.read': 'Reading key usage',
  'connections.read': 'Connection counts',
  'messages.crossRoom': 'Reading message history across rooms',
  'messages.batchAsAnyone': 'Batch sending as another user or to receivers',
  'messages.sendAsAnyone': 'Sending as another user',
  'push.send': 'Sending push notifications',
  'rooms.webhook': "Setting a room's webhook or bot mode",
  'deliveries.read': 'Reading webhook and push deliveries',
};

function describe(op: Operation): string {
  return DESCRIPTIONS[op] ?? op;
}
