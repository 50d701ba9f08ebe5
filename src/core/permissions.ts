import type { Actor, UserActor } from './identity.js';
import { Errors } from './errors.js';
import type { RoomRecord } from './models.js';

/**
 * Who may do what: the one permission table. Every route and socket handler names its
 * operation here and calls `authorize`; no other module decides access.
 *
 * - `admin`:     API key only (what the client-key document reserves for it)
 * - `user`:      a user (client key + token); the API key too, acting as administrator
 * - `self`:      a user acting on their own account; the API key has no "me"
 * - `member`:    the API key, or a member of the room
 * - `superuser`: the API key, the room's owner, or its admins (member role `admin` or `managers`)
 */
export type Rule = 'admin' | 'user' | 'self' | 'member' | 'superuser';

export const PERMISSIONS = {
  // Reserved for the API key by the client-key document
  'users.manage': 'admin',
  'tokens.manage': 'admin',
  'app.settings': 'admin',
  'messages.crossRoom': 'admin',
  'messages.batch': 'admin',
  'messages.sendAsAnyone': 'admin',
  // A user's own account
  'me.read': 'self',
  'me.update': 'self',
  // Rooms
  'rooms.create': 'user',
  'rooms.list': 'self',
  'rooms.join': 'user',
  'rooms.read': 'member',
  'rooms.update': 'superuser',
  'rooms.updateOwnership': 'superuser',
  'rooms.delete': 'superuser',
  'members.add': 'member',
  'members.removeOthers': 'superuser',
  'members.leave': 'member',
  'members.setRole': 'superuser',
  // Messages
  'messages.send': 'member',
  'messages.read': 'member',
  'messages.markRead': 'self',
  'messages.typing': 'member',
} as const satisfies Record<string, Rule>;

export type Operation = keyof typeof PERMISSIONS;

export function isSuperuser(actor: Actor, room: RoomRecord): boolean {
  if (actor.kind === 'admin') return true;
  const id = actor.userId;
  return room.owner === id || room.managers.includes(id) || room.memberState[id]?.role === 'admin';
}

export function isMember(actor: Actor, room: RoomRecord): boolean {
  return actor.kind === 'admin' || room.memberState[actor.userId] !== undefined;
}

/** Throws the refusal for `op`, or returns normally. Room rules need the room. */
export function authorize(actor: Actor, op: Operation, room?: RoomRecord): void {
  const rule: Rule = PERMISSIONS[op];
  switch (rule) {
    case 'admin':
      if (actor.kind !== 'admin') throw Errors.apiKeyRequired(describe(op));
      return;
    case 'user':
      return;
    case 'self':
      if (actor.kind !== 'user') {
        throw Errors.forbidden('USER_TOKEN_REQUIRED', 'This operation acts as a user: use client key + token');
      }
      return;
    case 'member':
      if (!room) throw new Error(`authorize(${op}) needs a room`);
      if (!isMember(actor, room)) throw Errors.notRoomMember();
      return;
    case 'superuser':
      if (!room) throw new Error(`authorize(${op}) needs a room`);
      if (!isMember(actor, room)) throw Errors.notRoomMember();
      if (!isSuperuser(actor, room)) {
        throw Errors.forbidden('NOT_ROOM_SUPERUSER', "Only the room's owner or admins (or the API key) may do this");
      }
      return;
  }
}

/** Narrowing helper for operations whose rule is `self`. */
export function asUser(actor: Actor, op: Operation): UserActor {
  authorize(actor, op);
  return actor as UserActor;
}

const DESCRIPTIONS: Partial<Record<Operation, string>> = {
  'users.manage': 'Creating, updating or deleting users',
  'tokens.manage': 'Managing user tokens',
  'app.settings': 'Changing application settings',
  'messages.crossRoom': 'Reading message history across rooms',
  'messages.batch': 'Batch sending',
  'messages.sendAsAnyone': 'Sending as another user',
};

function describe(op: Operation): string {
  return DESCRIPTIONS[op] ?? op;
}
