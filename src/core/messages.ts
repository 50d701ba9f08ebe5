import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { roomTopic } from '../bus/bus.js';
import type { HistoryQuery, Store } from '../store/store.js';
import { Errors, isRoomChanged } from './errors.js';
import type { Actor } from './identity.js';
import type { MemberRoom, MessageRecord, OutboxItem, RoomRecord } from './models.js';
import { type Clock, systemClock } from './clock.js';
import { allows, asUser, authorize, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import { newMessageId } from './secrets.js';
import { requireMessage, requireRoomFor, requireRoomForSend, requireUser } from './lookup.js';
import { parseInput } from './validate.js';
import { DEFAULT_SERVICE_LIMITS, encodeForStore, isValidId, type ServiceLimits } from './limits.js';
import { WindowCounter } from './rate-limit.js';
import type { MessageView } from './views.js';
import { checkRequiredFields, FIELD_SHAPES, OPTIONAL_FIELDS } from './message-types.js';

const id = z.string().trim().min(1).max(128);

export const RECALL = 'recall';

const messageBody = {
  _id: id.refine(isValidId, { message: 'use 1-128 of A-Z a-z 0-9 _ . @ : + = -' }).optional(),
  messageType: z.string().trim().min(1).max(64).optional(),
  message: z.unknown().optional(),
  reply: id.nullish(),
  mentions: z.array(z.string().max(128)).max(1000).nullish(),
  extra: z.unknown().optional(),
  ...FIELD_SHAPES,
  /** IMKIT's `push` flag: false sends no push notification for this message. */
  push: z.boolean().optional(),
};
const sendSchema = z.looseObject(messageBody);
const sendAsSchema = z.looseObject({ ...messageBody, room: id, sender: id });
type SendInput = z.infer<typeof sendSchema>;

/** The request bodies this service validates, by operation (routes reference them for the protocol reference). */
export const messageInputs = { send: sendSchema, sendAs: sendAsSchema };

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
    room: Pick<RoomRecord, 'id' | 'webhook' | 'botState'>,
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
  /** Masks the application's censored words in a text message (ConfigService). */
  censor?: (appId: string, text: string) => Promise<string>;
}

/** The outbox items (webhook call, push fan-out) a new message produces; written with it. */
export interface MessageOutbox {
  forMessage(appId: string, room: Pick<RoomRecord, 'id' | 'webhook' | 'botState'>, message: MessageRecord, view: MessageView, options: { push: boolean; webhook: boolean }): Promise<OutboxItem[]>;
}

/**
 * How far a room's activity time may trail its newest message: it is the creation time of the
 * message stored last, and concurrent sends (or two nodes' clocks) can store a message created
 * a moment earlier after one created later.
 */
const ACTIVITY_SLACK_MS = 5_000;

/** What one reader may see of a room's history (`MessageService.readerView`). */
interface ReaderView {
  /** Ids they deleted for themselves. */
  deletedIds: string[];
  /** Their "delete all for me" time. */
  clearedAt?: number;
  /** Whether anything is left out for them at all. */
  filters: boolean;
  visible(m: MessageRecord): boolean;
}

/** Sending, editing, recalling, pinning, deleting and reading messages. */
export class MessageService implements SystemMessages {
  private sent: WindowCounter;

  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private clock: Clock = systemClock,
    private limits: ServiceLimits = DEFAULT_SERVICE_LIMITS,
    private outbox?: MessageOutbox,
    private hooks: SendHooks = {},
  ) {
    this.sent = new WindowCounter(limits.messagesPerMinutePerUser, 60_000);
  }

  /**
   * `POST /rooms/:id/message` and socket `chat message`: send; with the `_id` of an existing
   * message, edit it (sender) or, with `messageType: "recall"`, recall it.
   */
  async send(actor: Actor, roomId: string, body: unknown): Promise<MessageView> {
    const input = parseInput(sendSchema, body);
    const afresh = async () => this.sendTo(actor, await requireRoomFor(this.store, actor, roomId), input);
    // An edit or a recall (or a client-chosen id) is checked on the room as it is now.
    if (input._id !== undefined) return afresh();
    try {
      return await this.sendNew(actor, roomId, input, afresh);
    } catch (err) {
      // The room changed on another node after this node cached it: check the send again on a fresh read.
      if (isRoomChanged(err)) return afresh();
      throw err;
    }
  }

  /**
   * A new message checked on the room as the store may have it cached (Store.getRoomForSend):
   * the store then takes the message only if the room is still at the version checked, and a
   * refusal by the cached room (membership, a freeze) is decided again on a fresh read (`afresh`).
   */
  private async sendNew(actor: Actor, roomId: string, input: SendInput, afresh: () => Promise<MessageView>): Promise<MessageView> {
    const { room, version } = await requireRoomForSend(this.store, actor, roomId);
    const sender = actor.kind === 'user' ? actor.userId : undefined;
    try {
      authorize(actor, 'messages.send', room);
      this.checkRoomTakes(actor, room);
    } catch (err) {
      if (version === undefined) throw err;
      return afresh();
    }
    // The quota and blocks do not depend on the cached copy: decided once, here.
    await this.checkSenderMay(actor, room, sender);
    return this.create(actor, room, sender, input, undefined, version);
  }

  /** A send checked on a room as read: a new message, or an edit or recall of the message `_id` names. */
  private async sendTo(actor: Actor, room: MemberRoom, input: SendInput): Promise<MessageView> {
    authorize(actor, 'messages.send', room);
    if (input._id !== undefined) {
      const existing = await this.store.getMessage(actor.app.id, input._id);
      if (existing) {
        if (existing.room !== room.id) throw Errors.notFound('MESSAGE', existing.id);
        if (input.messageType === RECALL) return this.recall(actor, room, existing);
        // An edit is a post: a frozen room or a block in a direct room stops it too.
        await this.checkCanPost(actor, room, actor.kind === 'user' ? actor.userId : undefined);
        return this.edit(actor, room, existing, input);
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
  private async checkCanPost(actor: Actor, room: MemberRoom, sender: string | undefined): Promise<void> {
    this.checkRoomTakes(actor, room);
    await this.checkSenderMay(actor, room, sender);
  }

  /** What the room's own state decides beyond membership: a freeze. */
  private checkRoomTakes(actor: Actor, room: MemberRoom): void {
    if (room.status === 0 && !isSuperuser(actor, room)) throw Errors.roomFrozen();
  }

  /** What the sender's own state decides: the per-user message quota, and blocks (read fresh). */
  private async checkSenderMay(actor: Actor, room: MemberRoom, sender: string | undefined): Promise<void> {
    if (sender !== undefined && !this.sent.hit(`${actor.app.id}/${sender}`)) throw Errors.quotaExceeded('messages per minute');
    if (room.roomType === 'direct' && sender) {
      const peer = room.members.find((m) => m !== sender);
      if (peer && ((await this.store.getBlock(actor.app.id, sender, peer)) || (await this.store.getBlock(actor.app.id, peer, sender)))) {
        throw Errors.blocked();
      }
    }
  }

  async post(
    appId: string,
    room: Pick<RoomRecord, 'id' | 'webhook' | 'botState'>,
    sender: string | undefined,
    messageType: string,
    message: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    const now = this.clock.now();
    await this.persistAndPublish(appId, room, { id: newMessageId(now), room: room.id, sender, messageType, message, fields, createdAt: now, updatedAt: now }, { push: true, webhook: true });
  }

  /**
   * A room webhook's reply `data` posted as `senderId` (api-doc webhook.md: the bot answers).
   * `messageId` is derived from the delivery, so a repeated delivery posts nothing twice.
   * It raises no MESSAGE webhook of its own (a bot would otherwise answer itself forever).
   */
  async postBotReply(appId: string, roomId: string, senderId: string | undefined, data: unknown, messageId: string): Promise<MessageView | undefined> {
    const input = parseInput(sendSchema, data);
    if (input.message === undefined) throw Errors.invalidInput('data.message: required');
    if (await this.store.getMessage(appId, messageId)) return undefined;
    const room = await this.store.getRoom(appId, roomId);
    if (!room) throw Errors.notFound('ROOM', roomId);
    if (senderId !== undefined) await requireUser(this.store, appId, senderId);
    const now = this.clock.now();
    const message: MessageRecord = {
      id: messageId, room: roomId, sender: senderId, messageType: input.messageType ?? 'text', message: input.message,
      fields: pickFields(input), createdAt: now, updatedAt: now,
    };
    return this.persistAndPublish(appId, room, message, { push: input.push ?? true, webhook: false });
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
    const hidden = await this.hiddenSenders(actor, room);
    const view = await this.readerView(actor, room, hidden);
    const page = await this.visiblePage(actor.app.id, roomId, view, { anchor, direction, includeAnchor: anchor !== undefined, limit: params.limit });
    // The store walks away from the anchor; sortOrder may flip that.
    const natural = direction === 'older' ? 'desc' : 'asc';
    if (params.sortOrder && params.sortOrder !== natural) page.reverse();
    return {
      totalCount: await this.store.countMessages(actor.app.id, roomId),
      data: await this.present.messages(actor.app.id, page, { pinnedId: room.pinnedMessageId, hidden }),
      userDeletedIDs: view.deletedIds,
    };
  }

  /**
   * Up to `limit` messages the reader may see, walking from the anchor as the store does.
   * Messages the reader may not see are left out (blocked senders, deleted for them, hidden),
   * the anchor too; the walk goes on until the page is full or history ends. A page also
   * stops at its byte budget (one message at least), whatever the limit asked.
   */
  private async visiblePage(appId: string, roomId: string, view: ReaderView, query: HistoryQuery): Promise<MessageRecord[]> {
    const page: MessageRecord[] = [];
    if (query.limit === 0) return page;
    let bytes = 0;
    let from = query.anchor;
    let includeAnchor = query.includeAnchor;
    for (;;) {
      const batch = await this.store.listMessages(appId, roomId, { anchor: from, direction: query.direction, includeAnchor, limit: query.limit });
      if (!batch) throw Errors.notFound('MESSAGE', query.anchor);
      for (const m of batch) {
        // Walking back past "delete all for me": nothing older is visible.
        if (query.direction === 'older' && view.clearedAt !== undefined && m.createdAt <= view.clearedAt) return page;
        if (!view.visible(m)) continue;
        bytes += JSON.stringify(m).length;
        if (bytes > this.limits.maxPageBytes && page.length > 0) return page;
        page.push(m);
        if (page.length === query.limit) return page;
      }
      if (batch.length < query.limit || !view.filters) return page;
      from = batch.at(-1)!.id;
      includeAnchor = false;
    }
  }

  /**
   * `GET /rooms/:id/messages/:messageID?before=&after=` (room/Room-List-Room-Messages-Around.md):
   * up to `before` messages older than the anchor, the anchor (when the reader may see it) and
   * up to `after` newer ones, newest first as the page's sample shows; `totalCount` counts them.
   */
  async around(actor: Actor, roomId: string, messageId: string, counts: { before: number; after: number }) {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.read', room);
    const hidden = await this.hiddenSenders(actor, room);
    const view = await this.readerView(actor, room, hidden);
    const appId = actor.app.id;
    // The anchor and what is older (a missing anchor is 404 here), then what is newer.
    const older = await this.visiblePage(appId, roomId, view, { anchor: messageId, direction: 'older', includeAnchor: true, limit: counts.before + 1 });
    const anchorSeen = older[0]?.id === messageId;
    const newer = await this.visiblePage(appId, roomId, view, { anchor: messageId, direction: 'newer', includeAnchor: false, limit: counts.after });
    const page = [...newer.reverse(), ...(anchorSeen ? older : older.slice(0, counts.before))];
    return { totalCount: page.length, data: await this.present.messages(appId, page, { pinnedId: room.pinnedMessageId, hidden }) };
  }

  /**
   * `GET /rooms/:id/pined-messages` (room/Room-List-pined-messages.md, IMKIT's spelling): the
   * room's pinned messages, which in roomcast is at most one, unless the reader may not see it.
   */
  async pinnedMessages(actor: Actor, roomId: string) {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.read', room);
    const pinned = room.pinnedMessageId ? await this.store.getMessage(actor.app.id, room.pinnedMessageId) : undefined;
    const hidden = await this.hiddenSenders(actor, room);
    const visible = pinned !== undefined && pinned.room === room.id && (await this.readerView(actor, room, hidden)).visible(pinned);
    const data = visible ? await this.present.messages(actor.app.id, [pinned], { pinnedId: room.pinnedMessageId, hidden }) : [];
    return { totalCount: data.length, data };
  }

  /**
   * `GET /rooms/:id/count[?timeInMS=]` (room/Room-Count-messages.md): messages created or
   * changed after the time; without it, every message of the room (O(1)).
   */
  async count(actor: Actor, roomId: string, since: number | undefined): Promise<{ count: number }> {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.read', room);
    const count = since === undefined
      ? await this.store.countMessages(actor.app.id, roomId)
      : await this.store.countMessagesChangedSince(actor.app.id, roomId, since);
    return { count };
  }

  /**
   * `GET /messages/recent?limit=` (message/Message-Query-recent.md): the newest messages
   * across the caller's rooms that they may read, newest first, as `{count, data}`. Rooms are
   * visited from the most recently active; a room whose last activity is older than the page's
   * oldest message (by more than ACTIVITY_SLACK_MS) cannot add to it, so the walk stops there.
   */
  async recent(actor: Actor, limit: number): Promise<{ count: number; data: MessageView[] }> {
    const me = asUser(actor, 'messages.recent');
    const appId = actor.app.id;
    const rooms = (await this.store.getRooms(appId, await this.store.userRoomIds(appId, me.userId)))
      .filter((r): r is RoomRecord => r !== undefined)
      .sort((a, b) => b.lastActivityAt - a.lastActivityAt);
    const blocked = await this.hiddenSenders(actor, { roomType: 'group' });
    const shown = new Map<string, { pinnedId?: string; hidden: Set<string> }>();
    let newest: MessageRecord[] = [];
    for (const whole of rooms) {
      if (newest.length === limit && whole.lastActivityAt + ACTIVITY_SLACK_MS < newest.at(-1)!.createdAt) break;
      const room = await this.store.getRoomForUser(appId, whole.id, me.userId);
      if (!room || !allows(actor, 'messages.read', room)) continue;
      const hidden = room.roomType === 'direct' ? new Set<string>() : blocked;
      shown.set(room.id, { pinnedId: room.pinnedMessageId, hidden });
      const page = await this.visiblePage(appId, room.id, await this.readerView(actor, room, hidden), { direction: 'older', includeAnchor: false, limit });
      newest = [...newest, ...page].sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
    }
    // Shown as its room's history shows it (that room's pin, whose quotes are left out).
    const views = new Map<string, MessageView>();
    for (const [roomId, context] of shown) {
      const ofRoom = newest.filter((m) => m.room === roomId);
      if (ofRoom.length > 0) for (const v of await this.present.messages(appId, ofRoom, context)) views.set(v.id, v);
    }
    const data = newest.map((m) => views.get(m.id)!);
    return { count: data.length, data };
  }

  /**
   * What one reader sees of a room's history: not messages from senders they blocked (group
   * rooms), not messages they deleted for themselves or sent before their "delete all", and
   * not messages a superuser hid (unless the reader is a superuser).
   */
  private async readerView(actor: Actor, room: MemberRoom, hiddenSenders: Set<string>): Promise<ReaderView> {
    const userId = actor.kind === 'user' ? actor.userId : undefined;
    const deletedIds = userId ? await this.store.listUserDeletedMessages(actor.app.id, userId, room.id) : [];
    const deleted = new Set(deletedIds);
    const clearedAt = userId ? room.member?.clearedAt : undefined;
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

  /** In group rooms, the senders a user has blocked are hidden from them (history, last message, quotes, unread). */
  async hiddenSenders(actor: Actor, room: Pick<RoomRecord, 'roomType'>): Promise<Set<string>> {
    if (actor.kind !== 'user' || room.roomType === 'direct') return new Set();
    return new Set((await this.store.listBlocks(actor.app.id, actor.userId)).map((b) => b.blockee));
  }

  /**
   * `POST`/`DELETE /messages/:id/pin`: one pinned message per room; pinning another unpins
   * the previous. The room's pointer is the only record of it (views derive `pinned` from
   * it), so the pointer and the flags can never disagree. Unpinning a message that is not
   * the pinned one changes nothing.
   */
  async pin(actor: Actor, messageId: string, pinned: boolean): Promise<MessageView> {
    const message = await requireMessage(this.store, actor.app.id, messageId);
    const room = await requireRoomFor(this.store, actor, message.room);
    authorize(actor, 'messages.pin', room, message);
    if (pinned && message.messageType === RECALL) throw Errors.messageRecalled('pinned');
    const now = this.clock.now();
    let changed = false;
    let previous: string | undefined;
    let updated = await this.store.updateRoom(actor.app.id, room.id, (r) => {
      changed = pinned ? r.pinnedMessageId !== message.id : r.pinnedMessageId === message.id;
      previous = r.pinnedMessageId;
      if (!changed) return undefined;
      r.pinnedMessageId = pinned ? message.id : undefined;
      r.updatedAt = now;
      return r;
    });
    if (!updated) throw Errors.notFound('ROOM', room.id);
    if (pinned && changed) {
      // Recalled or deleted while it was being pinned: recall/delete clear the pointer after
      // changing the message, pin checks the message after setting it, so one of them sees the other.
      const current = await this.store.getMessage(actor.app.id, message.id);
      if (!current || current.messageType === RECALL) updated = (await this.clearPin(actor.app.id, room.id, message.id)) ?? updated;
    }
    if (changed) {
      const roomView = await this.present.room(actor.app.id, updated);
      this.bus.publish(roomTopic(actor.app.id, room.id), roomDelivery(roomView));
      // The message that was pinned before is delivered again, now shown unpinned.
      const before = pinned && previous ? await this.store.getMessage(actor.app.id, previous) : undefined;
      if (before) await this.publishMessage(actor.app.id, before, updated.pinnedMessageId);
    }
    const current = (await this.store.getMessage(actor.app.id, message.id)) ?? message;
    return this.publishMessage(actor.app.id, current, updated.pinnedMessageId);
  }

  /** `DELETE /rooms/:id/messages/:messageId` (or `_all`): gone from history, `messageDeleted` to members. */
  async remove(actor: Actor, roomId: string, messageId: string) {
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.delete', room);
    let deletedCount: number;
    if (messageId === '_all') {
      deletedCount = await this.store.clearMessages(actor.app.id, roomId);
    } else {
      if (!(await this.store.deleteMessage(actor.app.id, roomId, messageId))) throw Errors.notFound('MESSAGE', messageId);
      deletedCount = 1;
    }
    // Decided on the room as it is now, not as read above: a pin set meanwhile is seen.
    await this.clearPin(actor.app.id, roomId, messageId === '_all' ? undefined : messageId);
    this.bus.publish(roomTopic(actor.app.id, roomId), { kind: 'deliver', event: 'messageDeleted', payload: { room: roomId, messageID: messageId } });
    const deletedAt = this.clock.now();
    return {
      deletedCount,
      roomID: roomId,
      messageID: messageId,
      deletedBy: actor.kind === 'user' ? actor.userId : 'admin',
      deletedAt: new Date(deletedAt).toISOString(),
      deletedAtMS: deletedAt,
    };
  }

  /**
   * Unpins `messageId` (any message when undefined) if it is still the room's pinned one;
   * the room afterwards when that changed it (and its members were told), else undefined.
   */
  private async clearPin(appId: string, roomId: string, messageId: string | undefined): Promise<RoomRecord | undefined> {
    let changed = false;
    const room = await this.store.updateRoom(appId, roomId, (r) => {
      changed = r.pinnedMessageId !== undefined && (messageId === undefined || r.pinnedMessageId === messageId);
      if (!changed) return undefined;
      r.pinnedMessageId = undefined;
      r.updatedAt = this.clock.now();
      return r;
    });
    if (!changed || !room) return undefined;
    this.bus.publish(roomTopic(appId, roomId), roomDelivery(await this.present.room(appId, room)));
    return room;
  }

  private async create(
    actor: Actor,
    room: MemberRoom,
    sender: string | undefined,
    input: SendInput,
    requestedId?: string,
    roomVersion?: number,
  ): Promise<MessageView> {
    const appId = actor.app.id;
    if (input.messageType === RECALL) throw Errors.invalidInput('messageType recall needs the _id of an existing message');
    const messageType = input.messageType ?? 'text';
    checkRequiredFields(messageType, input);
    if (input.reply) await requireMessage(this.store, appId, input.reply, room.id);
    const now = this.clock.now();
    const message: MessageRecord = {
      id: requestedId ?? newMessageId(now),
      room: room.id,
      sender,
      messageType,
      message: await this.censored(appId, input.message),
      fields: pickFields(input),
      createdAt: now,
      updatedAt: now,
    };
    return this.persistAndPublish(appId, room, message, { push: input.push ?? true, webhook: true }, actor, roomVersion);
  }

  /** Only the sender edits; the update keeps its `_id` and is delivered again. Never undoes a recall. */
  private async edit(actor: Actor, room: MemberRoom, existing: MessageRecord, input: SendInput): Promise<MessageView> {
    authorize(actor, 'messages.edit', room, existing);
    const now = this.clock.now();
    const text = input.message === undefined ? undefined : await this.censored(actor.app.id, input.message);
    let recalled = false;
    const updated = await this.store.updateMessage(actor.app.id, existing.id, (m) => {
      recalled = m.messageType === RECALL;
      if (recalled) return undefined;
      const next = {
        ...m,
        messageType: input.messageType ?? m.messageType,
        message: text ?? m.message,
        fields: { ...m.fields, ...pickFields(input) },
        updatedAt: now,
        editedAt: now,
      };
      encodeForStore(next, this.limits.maxMessageBytes);
      return next;
    });
    if (!updated) throw Errors.notFound('MESSAGE', existing.id);
    if (recalled) throw Errors.messageRecalled('edited');
    await this.afterStore(actor.app.id, updated, actor);
    return this.publishMessage(actor.app.id, updated, room.pinnedMessageId);
  }

  /**
   * Recall: content, attachments and extra are cleared, the type becomes `recall`, and every
   * member gets the update under the same `_id`. Recalling twice changes nothing. A recalled
   * message is never pinned.
   */
  private async recall(actor: Actor, room: MemberRoom, existing: MessageRecord): Promise<MessageView> {
    authorize(actor, 'messages.recall', room, existing);
    const now = this.clock.now();
    let already = false;
    const updated = await this.store.updateMessage(actor.app.id, existing.id, (m) => {
      already = m.messageType === RECALL;
      if (already) return undefined;
      return { id: m.id, room: m.room, sender: m.sender, messageType: RECALL, message: '', fields: {}, createdAt: m.createdAt, updatedAt: now };
    });
    if (!updated) throw Errors.notFound('MESSAGE', existing.id);
    if (already) return this.present.message(actor.app.id, updated);
    await this.clearPin(actor.app.id, room.id, existing.id);
    return this.publishMessage(actor.app.id, updated, undefined);
  }

  /**
   * Stores, then publishes: a message is acknowledged and delivered only once it is stored.
   * Insert-only: a room deleted meanwhile is 404, an id taken meanwhile 409 (never a 500).
   * Its webhook call and push fan-out are stored in the same step (the outbox); nothing on
   * this path waits for a receiver.
   */
  private async persistAndPublish(
    appId: string,
    room: Pick<RoomRecord, 'id' | 'webhook' | 'botState'>,
    message: MessageRecord,
    options: { push: boolean; webhook: boolean },
    author?: Actor,
    roomVersion?: number,
  ): Promise<MessageView> {
    const encoded = encodeForStore(message, this.limits.maxMessageBytes);
    const view = await this.present.message(appId, message, { pinnedId: undefined });
    const outbox = this.outbox ? await this.outbox.forMessage(appId, room, message, view, options) : [];
    if (!(await this.store.addMessage(appId, message, outbox, encoded, roomVersion))) {
      if (!(await this.store.getRoom(appId, message.room))) throw Errors.notFound('ROOM', message.room);
      throw Errors.messageExists(message.id);
    }
    await this.afterStore(appId, message, author);
    this.bus.publish(roomTopic(appId, message.room), { kind: 'deliver', event: 'chat message', payload: view, sender: message.sender, ...quotes(view) });
    return view;
  }

  /**
   * Stored (and indexed for search, in the same write) first, shared next, delivered last: a
   * member who gets the message can read its files. System messages (no author) share nothing.
   */
  private async afterStore(appId: string, message: MessageRecord, author?: Actor): Promise<void> {
    if (author) await this.hooks.files?.shareReferenced(author, message.room, message.fields);
  }

  /** Text as it may be stored: the application's censored words masked. */
  private async censored(appId: string, message: unknown): Promise<unknown> {
    return typeof message === 'string' && message !== '' && this.hooks.censor ? this.hooks.censor(appId, message) : message;
  }

  /** Delivers a message changed elsewhere (reactions, hiding) to its room, as edits are. */
  async republish(appId: string, message: MessageRecord, pinnedId: string | undefined): Promise<MessageView> {
    return this.publishMessage(appId, message, pinnedId);
  }

  private async publishMessage(appId: string, message: MessageRecord, pinnedId: string | undefined): Promise<MessageView> {
    const view = await this.present.message(appId, message, { pinnedId });
    this.bus.publish(roomTopic(appId, message.room), { kind: 'deliver', event: 'chat message', payload: view, sender: message.sender, ...quotes(view) });
    return view;
  }
}

/**
 * What a delivery carries of other users' content (a quoted reply, a room's last or pinned
 * message), and the same payload without it: the gateway gives that one to whoever blocked them.
 */
export function quotes(payload: Record<string, unknown>): { quoted?: string[]; redacted?: unknown } {
  let quoted: string[] | undefined;
  let redacted: Record<string, unknown> | undefined;
  const add = (who: string) => {
    quoted ??= [];
    if (!quoted.includes(who)) quoted.push(who);
  };
  for (const key of QUOTING_FIELDS) {
    const inner = payload[key] as { sender?: { id?: unknown } | null; reply?: { sender?: { id?: unknown } | null } } | null | undefined;
    if (!inner) continue;
    const who = inner.sender?.id;
    // A room's last or pinned message may itself quote someone (its reply).
    const nested = key === 'reply' ? undefined : inner.reply?.sender?.id;
    if (typeof who !== 'string' && typeof nested !== 'string') continue;
    // The send path mostly quotes nobody: copy only when something must go.
    redacted ??= { ...payload };
    if (key === 'reply') delete redacted.reply;
    else redacted[key] = null;
    if (typeof who === 'string') add(who);
    if (typeof nested === 'string') add(nested);
  }
  return quoted ? { quoted, redacted } : {};
}

const QUOTING_FIELDS = ['reply', 'lastMessage', 'pinnedMessage'] as const;

/** A `room` event for the room's topic, with the content blockers must not see marked. */
export function roomDelivery(view: Record<string, unknown>) {
  return { kind: 'deliver' as const, event: 'room', payload: view, ...quotes(view) };
}

function pickFields(input: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of OPTIONAL_FIELDS) if (input[key] !== undefined && input[key] !== null) fields[key] = input[key];
  return fields;
}
