import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { MemberRoom, MessageRecord, RoomRecord, UserRecord } from './models.js';

/** Loads that answer 404 with the catalogue's code when the record is not there. */

export async function requireRoom(store: Store, appId: string, roomId: string): Promise<RoomRecord> {
  const room = await store.getRoom(appId, roomId);
  if (!room) throw Errors.notFound('ROOM', roomId);
  return room;
}

export async function requireUser(store: Store, appId: string, userId: string): Promise<UserRecord> {
  const user = await store.getUser(appId, userId);
  if (!user) throw Errors.notFound('CLIENT', userId);
  return user;
}

/**
 * The room for one actor's request, carrying only that actor's member state (O(1) in the
 * room's size): enough for every permission and send rule about the actor themselves. Use
 * `requireRoom` where other members' state is read (views, membership changes).
 */
export async function requireRoomFor(store: Store, actor: Actor, roomId: string): Promise<MemberRoom> {
  const room = await store.getRoomForUser(actor.app.id, roomId, actor.kind === 'user' ? actor.userId : '');
  if (!room) throw Errors.notFound('ROOM', roomId);
  return room;
}

/**
 * `requireRoomFor` for a new message: perhaps from the store's cache, with the room version the
 * store checks when it stores the message (Store.getRoomForSend).
 */
export async function requireRoomForSend(store: Store, actor: Actor, roomId: string): Promise<{ room: MemberRoom; version?: number }> {
  const read = await store.getRoomForSend(actor.app.id, roomId, actor.kind === 'user' ? actor.userId : '');
  if (!read) throw Errors.notFound('ROOM', roomId);
  return read;
}

/** A message, optionally required to belong to a given room. */
export async function requireMessage(store: Store, appId: string, messageId: string, roomId?: string): Promise<MessageRecord> {
  const message = await store.getMessage(appId, messageId);
  if (!message || (roomId !== undefined && message.room !== roomId)) throw Errors.notFound('MESSAGE', messageId);
  return message;
}

/** The sender of a message a payload quotes (a reply, a room's last message), for block filtering. */
export async function senderOf(store: Store, appId: string, messageId: unknown): Promise<string | undefined> {
  return typeof messageId === 'string' ? (await store.getMessage(appId, messageId))?.sender : undefined;
}
