import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { roomTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors, ImError } from './errors.js';
import type { Actor } from './identity.js';
import type { MessageRecord, RoomRecord } from './models.js';
import { authorize, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import { newId } from './secrets.js';
import { requireMessage, requireRoomFor, requireUser } from './lookup.js';
import { parseInput } from './validate.js';
import { checkRequiredFields, FIELD_SHAPES, OPTIONAL_FIELDS } from './message-types.js';
import type { MessageView } from './views.js';
import type { SearchIndex } from './search-index.js';

const id = z.string().trim().min(1).max(128);

export const RECALL = 'recall';

const messageBody = {
  _id: id.optional(),
  messageType: z.string().trim().min(1).max(64).optional(),
  message: z.unknown().optional(),
  reply: id.nullish(),
  mentions: z.array(z.string().max(128)).max(1000).nullish(),
  extra: z.unknown().optional(),
  ...FIELD_SHAPES,
};
const sendSchema = z.looseObject(messageBody);
const sendAsSchema = z.looseObject({ ...messageBody, room: id, sender: id });
type SendInput = z.infer<typeof sendSchema>;

export interface HistoryParams {
  limit: number;
  beforeMessage?: string;
  afterMessage?: string;
  sortOrder?: 'asc' | 'desc';
}

/** Posts system messages (joinRoom, addMembers, …) for room operations that ask for them. */
export interface SystemMessages {
  post(
    appId: string,
    room: RoomRecord,
    sender: string | undefined,
    messageType: string,
    message: string,
    fields: Record<string, unknown>,
  ): Promise<void>;
}

/** What sending also does, provided by other services (all optional). */
export interface SendHooks {
  /** Makes files a message references readable in its room (FileService). */
  files?: { shareReferenced(actor: Actor, roomId: string, fields: Record<string, unknown>): Promise<void> };
  /** Keeps message text searchable (SearchIndex). */
  index?: SearchIndex;
  /** Masks the application's censored words in a text message (ConfigService). */
  censor?: (appId: string, text: string) => Promise<string>;
}

/** Sending, editing, recalling, pinning, deleting and reading messages. */
export class MessageService implements SystemMessages {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private hooks: SendHooks = {},
  ) {}

  /**
   * `POST /rooms/:id/message` and socket `chat message`: send; with the `_id` of an existing
   * message, edit it (sender) or, with `messageType: "recall"`, recall it.
   */
  async send(actor: Actor, roomId: string, body: unknown): Promise<MessageView> {
    const input = parseInput(sendSchema, body);
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.send', room);
    if (input._id !== undefined) {
      const existing = await this.store.getMessage(actor.app.id, input._id);
      if (existing) {
        if (existing.room !== room.id) throw Errors.notFound('MESSAGE', existing.id);
        return input.messageType === RECALL ? this.recall(actor, room, existing) : this.edit(actor, room, existing, input);
      }
    }
    const sender = actor.kind === 'user' ? actor.userId : undefined;
    await this.checkCanPost(actor, room, sender);
    return this.create(actor, room, sender, input, input._id);
  }

  /** `POST /messages`: the administrator sends as any existing user. */
  async sendAs(actor: Actor, body: unknown): Promise<MessageView> {
    authorize(actor, 'messages.sendAsAnyone');
    const input = parseInput(sendAsSchema, body);
    const room = await requireRoomFor(this.store, actor, input.room);
    await requireUser(this.store, actor.app.id, input.sender);
    return this.create(actor, room, input.sender, input);
  }

  /**
   * The send rules beyond membership, in one place: a frozen room takes messages only from
   * its owner/admins (and the API key); in a direct room, a block either way stops both.
   */
  private async checkCanPost(actor: Actor, room: RoomRecord, sender: string | undefined): Promise<void> {
    if (room.status === 0 && !isSuperuser(actor, room)) {
      throw Errors.forbidden('ROOM_FROZEN', 'This room is frozen: only its owner and admins may post');
    }
    if (room.roomType === 'direct' && sender) {
      const peer = room.members.find((m) => m !== sender);
      if (peer && ((await this.store.getBlock(actor.app.id, sender, peer)) || (await this.store.getBlock(actor.app.id, peer, sender)))) {
        throw Errors.forbidden('BLOCKED', 'Messages between these users are blocked');
      }
    }
  }

  async post(
    appId: string,
    room: RoomRecord,
    sender: string | undefined,
    messageType: string,
    message: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    const now = Date.now();
    await this.persistAndPublish(appId, { id: newId(), room: room.id, sender, messageType, message, fields, createdAt: now, updatedAt: now });
  }

  /** `GET /rooms/:id/messages/v3`: newest first; a page from an anchor includes it as `data[0]`. */
  async history(actor: Actor, roomId: string, params: HistoryParams) {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.read', room);
    if (params.beforeMessage !== undefined && params.afterMessage !== undefined) {
      throw Errors.invalidInput('send beforeMessage or afterMessage, not both');
    }
    const anchor = params.beforeMessage ?? params.afterMessage;
    const direction = params.afterMessage !== undefined ? 'newer' : 'older';
    const view = await this.readerView(actor, room);
    const page: MessageRecord[] = [];
    let from = anchor;
    let includeAnchor = anchor !== undefined;
    // Messages the reader may not see are left out; keep reading until the page is full.
    outer: for (;;) {
      const batch = await this.store.listMessages(actor.app.id, roomId, { anchor: from, direction, includeAnchor, limit: params.limit });
      if (!batch) throw Errors.notFound('MESSAGE', anchor);
      for (const m of batch) {
        const isAnchor = m.id === anchor && page.length === 0;
        // Walking back past "delete all for me": nothing older is visible.
        if (!isAnchor && direction === 'older' && view.clearedAt !== undefined && m.createdAt <= view.clearedAt) break outer;
        if (isAnchor || view.visible(m)) page.push(m);
        if (page.length === params.limit) break;
      }
      if (page.length === params.limit || batch.length < params.limit || !view.filters) break;
      from = batch.at(-1)!.id;
      includeAnchor = false;
    }
    // The store walks away from the anchor; sortOrder may flip that.
    const natural = direction === 'older' ? 'desc' : 'asc';
    if (params.sortOrder && params.sortOrder !== natural) page.reverse();
    return {
      totalCount: await this.store.countMessages(actor.app.id, roomId),
      data: await this.present.messages(actor.app.id, page),
      userDeletedIDs: view.deletedIds,
    };
  }

  /**
   * What one reader sees of a room's history: not messages from senders they blocked (group
   * rooms), not messages they deleted for themselves or sent before their "delete all", and
   * not messages a superuser hid (unless the reader is a superuser).
   */
  private async readerView(actor: Actor, room: RoomRecord) {
    const hiddenSenders = await this.hiddenSenders(actor, room);
    const userId = actor.kind === 'user' ? actor.userId : undefined;
    const deletedIds = userId ? await this.store.listUserDeletedMessages(actor.app.id, userId, room.id) : [];
    const deleted = new Set(deletedIds);
    const clearedAt = userId ? room.memberState[userId]?.clearedAt : undefined;
    const seesHidden = isSuperuser(actor, room);
    return {
      deletedIds,
      clearedAt,
      filters: hiddenSenders.size > 0 || deleted.size > 0 || clearedAt !== undefined || !seesHidden,
      visible: (m: MessageRecord) =>
        !(m.sender && hiddenSenders.has(m.sender)) &&
        !deleted.has(m.id) &&
        !(clearedAt !== undefined && m.createdAt <= clearedAt) &&
        (seesHidden || (m.fields.isHidden !== true && !(m.sender !== undefined && room.hiddenSenders?.includes(m.sender)))),
    };
  }

  /** In group rooms, the senders a user has blocked are hidden from them. */
  private async hiddenSenders(actor: Actor, room: RoomRecord): Promise<Set<string>> {
    if (actor.kind !== 'user' || room.roomType === 'direct') return new Set();
    return new Set((await this.store.listBlocks(actor.app.id, actor.userId)).map((b) => b.blockee));
  }

  /** `POST`/`DELETE /messages/:id/pin`: one pinned message per room; pinning another unpins the previous. */
  async pin(actor: Actor, messageId: string, pinned: boolean): Promise<MessageView> {
    const message = await requireMessage(this.store, actor.app.id, messageId);
    const room = await requireRoomFor(this.store, actor, message.room);
    authorize(actor, 'messages.pin', room, message);
    if (pinned && message.messageType === RECALL) throw new ImError(409, 'MESSAGE_RECALLED', 'A recalled message cannot be pinned');
    let previous: string | undefined;
    const updatedRoom = await this.store.updateRoom(actor.app.id, room.id, (r) => {
      previous = r.pinnedMessageId;
      if (pinned) r.pinnedMessageId = message.id;
      else if (r.pinnedMessageId === message.id) r.pinnedMessageId = undefined;
      else return undefined;
      r.updatedAt = Date.now();
      return r;
    });
    if (previous && previous !== message.id) await this.setPinnedFlag(actor.app.id, previous, false);
    const view = await this.setPinnedFlag(actor.app.id, message.id, pinned);
    if (updatedRoom) {
      const roomView = await this.present.room(actor.app.id, updatedRoom);
      this.bus.publish(roomTopic(actor.app.id, room.id), { kind: 'deliver', event: 'room', payload: roomView });
    }
    return view ?? (await this.present.message(actor.app.id, message));
  }

  /** `DELETE /rooms/:id/messages/:messageId` (or `_all`): gone from history, `messageDeleted` to members. */
  async remove(actor: Actor, roomId: string, messageId: string) {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.delete', room);
    let deletedCount: number;
    if (messageId === '_all') {
      deletedCount = await this.store.clearMessages(actor.app.id, roomId);
      this.hooks.index?.removeRoom(actor.app.id, roomId);
    } else {
      if (!(await this.store.deleteMessage(actor.app.id, roomId, messageId))) throw Errors.notFound('MESSAGE', messageId);
      this.hooks.index?.remove(actor.app.id, messageId);
      deletedCount = 1;
    }
    if (room.pinnedMessageId && (messageId === '_all' || room.pinnedMessageId === messageId)) {
      await this.store.updateRoom(actor.app.id, roomId, (r) => ({ ...r, pinnedMessageId: undefined }));
    }
    this.bus.publish(roomTopic(actor.app.id, roomId), { kind: 'deliver', event: 'messageDeleted', payload: { room: roomId, messageID: messageId } });
    const deletedAt = Date.now();
    return {
      deletedCount,
      roomID: roomId,
      messageID: messageId,
      deletedBy: actor.kind === 'user' ? actor.userId : 'admin',
      deletedAt: new Date(deletedAt).toISOString(),
      deletedAtMS: deletedAt,
    };
  }

  private async create(actor: Actor, room: RoomRecord, sender: string | undefined, input: SendInput, requestedId?: string): Promise<MessageView> {
    const appId = actor.app.id;
    if (input.messageType === RECALL) throw Errors.invalidInput('messageType recall needs the _id of an existing message');
    const messageType = input.messageType ?? 'text';
    checkRequiredFields(messageType, input);
    if (input.reply) await requireMessage(this.store, appId, input.reply, room.id);
    const now = Date.now();
    return this.persistAndPublish(appId, {
      id: requestedId ?? newId(),
      room: room.id,
      sender,
      messageType,
      message: await this.censored(appId, input.message),
      fields: pickFields(input),
      createdAt: now,
      updatedAt: now,
    }, actor);
  }

  /** Only the sender edits; the update keeps its `_id` and is delivered again. */
  private async edit(actor: Actor, room: RoomRecord, existing: MessageRecord, input: SendInput): Promise<MessageView> {
    authorize(actor, 'messages.edit', room, existing);
    if (existing.messageType === RECALL) throw new ImError(409, 'MESSAGE_RECALLED', 'A recalled message cannot be edited');
    const now = Date.now();
    return this.replaceAndPublish(actor.app.id, {
      ...existing,
      messageType: input.messageType ?? existing.messageType,
      message: input.message === undefined ? existing.message : await this.censored(actor.app.id, input.message),
      fields: { ...existing.fields, ...pickFields(input) },
      updatedAt: now,
      editedAt: now,
    }, actor);
  }

  /**
   * Recall: content, attachments and extra are cleared, the type becomes `recall`, and every
   * member gets the update under the same `_id`. Recalling twice changes nothing.
   */
  private async recall(actor: Actor, room: RoomRecord, existing: MessageRecord): Promise<MessageView> {
    authorize(actor, 'messages.recall', room, existing);
    if (existing.messageType === RECALL) return this.present.message(actor.app.id, existing);
    if (room.pinnedMessageId === existing.id) {
      await this.store.updateRoom(actor.app.id, room.id, (r) => ({ ...r, pinnedMessageId: undefined }));
    }
    return this.replaceAndPublish(actor.app.id, {
      id: existing.id,
      room: existing.room,
      sender: existing.sender,
      messageType: RECALL,
      message: '',
      fields: {},
      createdAt: existing.createdAt,
      updatedAt: Date.now(),
    });
  }

  private async setPinnedFlag(appId: string, messageId: string, pinned: boolean): Promise<MessageView | undefined> {
    const message = await this.store.getMessage(appId, messageId);
    if (!message) return undefined;
    const fields = { ...message.fields };
    if (pinned) fields.pinned = true;
    else delete fields.pinned;
    return this.replaceAndPublish(appId, { ...message, fields, updatedAt: Date.now() });
  }

  /** Text as it may be stored: the application's censored words masked. */
  private async censored(appId: string, message: unknown): Promise<unknown> {
    return typeof message === 'string' && message !== '' && this.hooks.censor ? this.hooks.censor(appId, message) : message;
  }

  /** Stores, then publishes: a message is acknowledged and delivered only once it is stored. */
  private async persistAndPublish(appId: string, message: MessageRecord, author?: Actor): Promise<MessageView> {
    await this.store.addMessage(appId, message);
    this.hooks.index?.add(appId, message);
    if (author) await this.shareFiles(author, message);
    return this.publishMessage(appId, message);
  }

  private async replaceAndPublish(appId: string, message: MessageRecord, author?: Actor): Promise<MessageView> {
    if (!(await this.store.replaceMessage(appId, message))) throw Errors.notFound('MESSAGE', message.id);
    this.hooks.index?.add(appId, message);
    if (author) await this.shareFiles(author, message);
    return this.publishMessage(appId, message);
  }

  /** Stored first, shared next, delivered last: a member who gets the message can read its files. */
  private async shareFiles(author: Actor, message: MessageRecord): Promise<void> {
    await this.hooks.files?.shareReferenced(author, message.room, message.fields);
  }

  private async publishMessage(appId: string, message: MessageRecord): Promise<MessageView> {
    const view = await this.present.message(appId, message);
    this.bus.publish(roomTopic(appId, message.room), { kind: 'deliver', event: 'chat message', payload: view, sender: message.sender });
    return view;
  }

}

function pickFields(input: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of OPTIONAL_FIELDS) if (input[key] !== undefined && input[key] !== null) fields[key] = input[key];
  return fields;
}
