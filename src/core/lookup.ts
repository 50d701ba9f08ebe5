import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { MessageRecord, RoomRecord, UserRecord } from './models.js';

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

/** A message, optionally required to belong to a given room. */
export async function requireMessage(store: Store, appId: string, messageId: string, roomId?: string): Promise<MessageRecord> {
  const message = await store.getMessage(appId, messageId);
  if (!message || (roomId !== undefined && message.room !== roomId)) throw Errors.notFound('MESSAGE', messageId);
  return message;
}
