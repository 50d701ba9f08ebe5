import { z } from 'zod';
import { ownValue } from './own.js';
import type { Bus } from '../bus/bus.js';
import { userTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { MessageRecord } from './models.js';
import { asUser, authorize } from './permissions.js';
import type { Presenter } from './presenter.js';
import { requireMessage, requireRoomFor } from './lookup.js';
import { parseInput } from './validate.js';
import type { MessageView } from './views.js';
import type { MessageService } from './messages.js';

const id = z.string().trim().min(1).max(128);
const reactionSchema = z.looseObject({ reaction: z.string().trim().min(1).max(64) });
const userDeleteSchema = z.looseObject({ room: id, messages: z.array(id).min(1).max(1000) });
const roomSchema = z.looseObject({ room: id });
const senderInRoomSchema = z.looseObject({ room: id, sender: id });

interface Reaction {
  client: string;
  reaction: string;
}

const isReaction = (r: unknown): r is Reaction =>
  typeof r === 'object' && r !== null && typeof (r as Record<string, unknown>).client === 'string' && typeof (r as Record<string, unknown>).reaction === 'string';

/** The message's reactions (only the server writes them; anything malformed is dropped). */
function reactionsOf(message: MessageRecord): Reaction[] {
  const list = message.fields.reactions;
  return Array.isArray(list) ? list.filter(isReaction) : [];
}

/**
 * What users do to existing messages besides edit/recall/pin: reactions (`reactions`,
 * `reactionCount`, re-delivered as `chat message` under the same `_id`), "delete for me"
 * (`userDeleteMessages` to the user's own devices; history leaves them out), and hiding by
 * a superuser (`isHidden`; hidden from other members' history).
 */
export class MessageActionService {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private messages: MessageService,
  ) {}

  /** `POST /messages/:id/reaction {reaction}`: one entry per (user, reaction); adding it again changes nothing. */
  async react(actor: Actor, messageId: string, body: unknown): Promise<MessageView> {
    const me = asUser(actor, 'me.read');
    const { reaction } = parseInput(reactionSchema, body);
    const message = await this.memberMessage(actor, messageId, 'messages.react');
    return this.change(actor, message, (m) => {
      const list = reactionsOf(m);
      if (list.some((r) => r.client === me.userId && r.reaction === reaction)) return undefined;
      return withReactions(m, [...list, { client: me.userId, reaction }]);
    });
  }

  /** `DELETE /messages/:id/reaction?reaction=`: removes the user's reaction (all of theirs without one). */
  async unreact(actor: Actor, messageId: string, reaction: string | undefined): Promise<MessageView> {
    const me = asUser(actor, 'me.read');
    const message = await this.memberMessage(actor, messageId, 'messages.react');
    return this.change(actor, message, (m) => {
      const list = reactionsOf(m);
      const kept = list.filter((r) => !(r.client === me.userId && (reaction === undefined || r.reaction === reaction)));
      return kept.length === list.length ? undefined : withReactions(m, kept);
    });
  }

  /** `POST`/`DELETE /messages/:id/hidden`: a superuser hides a message from the other members' history. */
  async setHidden(actor: Actor, messageId: string, hidden: boolean): Promise<MessageView> {
    const message = await this.memberMessage(actor, messageId, 'messages.hide');
    return this.change(actor, message, (m) => {
      if ((m.fields.isHidden === true) === hidden) return undefined;
      const fields = { ...m.fields };
      if (hidden) fields.isHidden = true;
      else delete fields.isHidden;
      return { ...m, fields, updatedAt: Date.now() };
    });
  }

  /**
   * `POST /messages/hide-by-sender-in-room` / `unhide-by-sender-in-room {room, sender}`: a
   * superuser hides (or shows again) everything a sender posted in the room, from the other
   * members' history and search. One room field, so it costs nothing per message.
   */
  async setSenderHidden(actor: Actor, body: unknown, hidden: boolean) {
    const input = parseInput(senderInRoomSchema, body);
    authorize(actor, 'messages.hide', await requireRoomFor(this.store, actor, input.room));
    const updated = await this.store.updateRoom(actor.app.id, input.room, (r) => {
      const current = new Set(r.hiddenSenders ?? []);
      if (current.has(input.sender) === hidden) return undefined;
      if (hidden) current.add(input.sender);
      else current.delete(input.sender);
      r.hiddenSenders = [...current];
      r.updatedAt = Date.now();
      return r;
    });
    if (!updated) throw Errors.notFound('ROOM', input.room);
    return { room: input.room, sender: input.sender, hidden, hiddenSenders: updated.hiddenSenders ?? [] };
  }

  /** `POST /messages/user-delete {room, messages}`: gone from this user's history only. */
  async deleteForMe(actor: Actor, body: unknown) {
    const me = asUser(actor, 'me.read');
    const input = parseInput(userDeleteSchema, body);
    authorize(actor, 'messages.read', await requireRoomFor(this.store, actor, input.room));
    const found = await Promise.all(input.messages.map((m) => this.store.getMessage(actor.app.id, m)));
    const ids = found.filter((m): m is MessageRecord => m !== undefined && m.room === input.room).map((m) => m.id);
    await this.store.addUserDeletedMessages(actor.app.id, me.userId, input.room, ids);
    this.tellDevices(actor.app.id, me.userId, { room: input.room, messages: ids, isUserDeleteAllMessagesInRoom: false });
    return { room: input.room, messages: ids, count: ids.length };
  }

  /** `POST /messages/user-delete/all-in-room {room}`: everything sent so far, for this user only. */
  async deleteAllForMe(actor: Actor, body: unknown) {
    const me = asUser(actor, 'me.read');
    const input = parseInput(roomSchema, body);
    authorize(actor, 'messages.read', await requireRoomFor(this.store, actor, input.room));
    const now = Date.now();
    const updated = await this.store.updateRoom(actor.app.id, input.room, (r) => {
      const state = ownValue(r.memberState, me.userId);
      if (!state) return undefined;
      state.clearedAt = now;
      return r;
    });
    if (!updated) throw Errors.notRoomMember();
    this.tellDevices(actor.app.id, me.userId, { room: input.room, messages: [], isUserDeleteAllMessagesInRoom: true });
    const totalCount = await this.store.countMessages(actor.app.id, input.room);
    return { n: totalCount, nModified: totalCount, ok: 1, room: input.room, totalCount, messages: [] as string[] };
  }

  /** `GET /messages/user-delete?room=`: the ids this user deleted for themselves in the room. */
  async listDeletedForMe(actor: Actor, roomId: string | undefined) {
    const me = asUser(actor, 'me.read');
    const room = parseInput(id, roomId ?? '');
    authorize(actor, 'messages.read', await requireRoomFor(this.store, actor, room));
    const ids = await this.store.listUserDeletedMessages(actor.app.id, me.userId, room);
    return { totalCount: ids.length, data: ids.map((message) => ({ message })) };
  }

  private tellDevices(appId: string, userId: string, payload: Record<string, unknown>): void {
    this.bus.publish(userTopic(appId, userId), { kind: 'deliver', event: 'userDeleteMessages', payload });
  }

  private async memberMessage(actor: Actor, messageId: string, op: 'messages.react' | 'messages.hide'): Promise<{ message: MessageRecord; pinnedId?: string }> {
    const message = await requireMessage(this.store, actor.app.id, messageId);
    const room = await requireRoomFor(this.store, actor, message.room);
    authorize(actor, op, room, message);
    return { message, pinnedId: room.pinnedMessageId };
  }

  /** Compare-and-set change of one message (two reactions at once both count), re-delivered to the room when it changed. */
  private async change(
    actor: Actor,
    target: { message: MessageRecord; pinnedId?: string },
    edit: (m: MessageRecord) => MessageRecord | undefined,
  ): Promise<MessageView> {
    let changed = false;
    const next = await this.store.updateMessage(actor.app.id, target.message.id, (m) => {
      const result = edit(m);
      changed = result !== undefined;
      return result;
    });
    if (!next) throw Errors.notFound('MESSAGE', target.message.id);
    if (!changed) return this.present.message(actor.app.id, next, { pinnedId: target.pinnedId });
    return this.messages.republish(actor.app.id, next, target.pinnedId);
  }
}

function withReactions(m: MessageRecord, reactions: Reaction[]): MessageRecord {
  return { ...m, fields: { ...m.fields, reactions, reactionCount: reactions.length }, updatedAt: Date.now() };
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const messageActionInputs = { react: reactionSchema, senderInRoom: senderInRoomSchema, userDelete: userDeleteSchema, room: roomSchema };
