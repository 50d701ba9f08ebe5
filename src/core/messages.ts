import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { roomTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { MessageRecord, RoomRecord } from './models.js';
import { authorize } from './permissions.js';
import type { Presenter } from './presenter.js';
import { newId } from './secrets.js';
import { parseInput } from './validate.js';
import type { MessageView } from './views.js';

const id = z.string().trim().min(1).max(128);

/** Optional IMKIT message fields stored as sent (§3.10 of the protocol notes). */
const OPTIONAL_FIELDS = [
  'originalUrl', 'thumbnailUrl', 'width', 'height', 'images', 'duration', 'latitude', 'longitude',
  'url', 'reply', 'sticker', 'extra', 'template', 'contents', 'mentions',
] as const;

const messageBody = {
  _id: id.optional(),
  messageType: z.string().trim().min(1).max(64).optional(),
  message: z.unknown().optional(),
  reply: id.nullish(),
  mentions: z.array(z.string().max(128)).max(1000).nullish(),
  extra: z.unknown().optional(),
};
const sendSchema = z.looseObject(messageBody);
const sendAsSchema = z.looseObject({ ...messageBody, room: id, sender: id });

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

/** Sending, editing and reading messages. */
export class MessageService implements SystemMessages {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
  ) {}

  /** `POST /rooms/:id/message` and socket `chat message`: send, or edit with `_id`. */
  async send(actor: Actor, roomId: string, body: unknown): Promise<MessageView> {
    const input = parseInput(sendSchema, body);
    const room = await this.loadRoom(actor.app.id, roomId);
    authorize(actor, 'messages.send', room);
    const sender = actor.kind === 'user' ? actor.userId : undefined;
    if (input._id !== undefined) {
      const existing = await this.store.getMessage(actor.app.id, input._id);
      if (existing) return this.edit(actor, room, existing, input);
    }
    return this.create(actor.app.id, room, sender, input, input._id);
  }

  /** `POST /messages`: the administrator sends as any existing user. */
  async sendAs(actor: Actor, body: unknown): Promise<MessageView> {
    authorize(actor, 'messages.sendAsAnyone');
    const input = parseInput(sendAsSchema, body);
    const room = await this.loadRoom(actor.app.id, input.room);
    if (!(await this.store.getUser(actor.app.id, input.sender))) throw Errors.notFound('CLIENT', input.sender);
    return this.create(actor.app.id, room, input.sender, input);
  }

  async post(
    appId: string,
    room: RoomRecord,
    sender: string | undefined,
    messageType: string,
    message: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    await this.persistAndPublish(appId, room, {
      id: newId(),
      room: room.id,
      sender,
      messageType,
      message,
      fields,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    });
  }

  /** `GET /rooms/:id/messages/v3`: newest first; a page from an anchor includes it as `data[0]`. */
  async history(actor: Actor, roomId: string, params: HistoryParams) {
    const room = await this.loadRoom(actor.app.id, roomId);
    authorize(actor, 'messages.read', room);
    if (params.beforeMessage !== undefined && params.afterMessage !== undefined) {
      throw Errors.invalidInput('send beforeMessage or afterMessage, not both');
    }
    const anchor = params.beforeMessage ?? params.afterMessage;
    const direction = params.afterMessage !== undefined ? 'newer' : 'older';
    const page = await this.store.listMessages(actor.app.id, roomId, {
      anchor,
      direction,
      includeAnchor: anchor !== undefined,
      limit: params.limit,
    });
    if (!page) throw Errors.notFound('MESSAGE', anchor);
    // The store returns pages walking away from the anchor; sortOrder may flip that.
    const natural = direction === 'older' ? 'desc' : 'asc';
    if (params.sortOrder && params.sortOrder !== natural) page.reverse();
    return {
      totalCount: await this.store.countMessages(actor.app.id, roomId),
      data: await this.present.messages(actor.app.id, page),
      userDeletedIDs: [] as string[],
    };
  }

  private async create(
    appId: string,
    room: RoomRecord,
    sender: string | undefined,
    input: z.infer<typeof sendSchema>,
    requestedId?: string,
  ): Promise<MessageView> {
    if (input.message === undefined) throw Errors.invalidInput('message: required');
    if (input.reply) await this.requireInRoom(appId, room.id, input.reply);
    const now = Date.now();
    return this.persistAndPublish(appId, room, {
      id: requestedId ?? newId(),
      room: room.id,
      sender,
      messageType: input.messageType ?? 'text',
      message: input.message,
      fields: pickFields(input),
      createdAt: now,
      updatedAt: now,
    });
  }

  /** Only the sender edits; the update keeps its `_id` and is delivered again. */
  private async edit(
    actor: Actor,
    room: RoomRecord,
    existing: MessageRecord,
    input: z.infer<typeof sendSchema>,
  ): Promise<MessageView> {
    if (existing.room !== room.id) throw Errors.notFound('MESSAGE', existing.id);
    if (actor.kind !== 'user' || existing.sender !== actor.userId) {
      throw Errors.forbidden('NOT_MESSAGE_SENDER', 'Only the sender may edit a message');
    }
    const now = Date.now();
    const updated: MessageRecord = {
      ...existing,
      messageType: input.messageType ?? existing.messageType,
      message: input.message ?? existing.message,
      fields: { ...existing.fields, ...pickFields(input) },
      updatedAt: now,
      editedAt: now,
    };
    if (!(await this.store.replaceMessage(actor.app.id, updated))) throw Errors.notFound('MESSAGE', existing.id);
    const view = await this.present.message(actor.app.id, updated);
    this.bus.publish(roomTopic(actor.app.id, room.id), { kind: 'deliver', event: 'chat message', payload: view });
    return view;
  }

  /** Stores, then publishes: a message is acknowledged and delivered only once it is stored. */
  private async persistAndPublish(appId: string, room: RoomRecord, message: MessageRecord): Promise<MessageView> {
    await this.store.addMessage(appId, message);
    const view = await this.present.message(appId, message);
    this.bus.publish(roomTopic(appId, room.id), { kind: 'deliver', event: 'chat message', payload: view });
    return view;
  }

  private async loadRoom(appId: string, roomId: string): Promise<RoomRecord> {
    const room = await this.store.getRoom(appId, roomId);
    if (!room) throw Errors.notFound('ROOM', roomId);
    return room;
  }

  private async requireInRoom(appId: string, roomId: string, messageId: string): Promise<void> {
    const message = await this.store.getMessage(appId, messageId);
    if (!message || message.room !== roomId) throw Errors.notFound('MESSAGE', messageId);
  }
}

function pickFields(input: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of OPTIONAL_FIELDS) if (input[key] !== undefined && input[key] !== null) fields[key] = input[key];
  return fields;
}
