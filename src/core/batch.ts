import { z } from 'zod';
import type { Store } from '../store/store.js';
import { Errors, isRoomExists } from './errors.js';
import type { Actor } from './identity.js';
import type { RoomRecord } from './models.js';
import type { MessageService } from './messages.js';
import { authorize } from './permissions.js';
import type { Presenter } from './presenter.js';
import { directRoomId, type RoomService } from './rooms.js';
import { newId } from './secrets.js';
import { parseInput } from './validate.js';

const id = z.string().trim().min(1).max(128);
/** Room ids and `$pattern$` values per recipient (api-doc message/message-basic/batch-send-messages.md). */
const paraSchema = z.record(z.string(), z.string().max(4096)).refine((p) => p.room !== undefined || p.receiver !== undefined, 'room or receiver: required');
const batchSchema = z.looseObject({
  message: z.unknown(),
  messageType: z.string().trim().min(1).max(64),
  sender: id.optional(),
  extra: z.unknown().optional(),
  push: z.boolean().optional(),
  skipTotalBadge: z.boolean().optional(),
  paras: z.array(paraSchema).min(1).max(1000),
});
const adminListSchema = z.object({ limit: z.number().int().min(1).max(1000), from: z.number().optional(), to: z.number().optional() });

/**
 * `POST /messages/batch`: one message per recipient (`room`, or `receiver` → the direct room
 * with `sender`), with `$pattern$` substitution in `message` and `extra`. Answered at once with
 * `{batchID, count}`; the messages are sent in the background, each through the ordinary send
 * path (rules, storage, delivery), carrying `batchID`. A recipient that fails is skipped.
 */
export class BatchService {
  /** Per application, so one batch's sends run in order and batches do not interleave. */
  private queues = new Map<string, Promise<void>>();

  constructor(
    private store: Store,
    private messages: MessageService,
    private rooms: RoomService,
    private present: Presenter,
    private onError: (err: unknown) => void,
  ) {}

  async batch(actor: Actor, body: unknown): Promise<{ batchID: string; count: number }> {
    authorize(actor, 'messages.batch');
    const input = parseInput(batchSchema, body);
    const anyone = input.sender !== undefined || input.paras.some((p) => p.room === undefined);
    if (anyone) authorize(actor, 'messages.batchAsAnyone');
    if (input.message === undefined) throw Errors.invalidInput('message: required');
    if (input.paras.some((p) => p.room === undefined) && input.sender === undefined) {
      throw Errors.invalidInput('sender: required to send to a receiver (the direct room of sender and receiver)');
    }
    if (input.sender !== undefined && !(await this.store.getUser(actor.app.id, input.sender))) throw Errors.notFound('CLIENT', input.sender);
    const batchID = newId();
    const run = async () => {
      for (const para of input.paras) {
        try {
          await this.sendOne(actor, input, para, batchID);
        } catch (err) {
          this.onError(err);
        }
      }
    };
    const previous = this.queues.get(actor.app.id) ?? Promise.resolve();
    const next = previous.then(run);
    this.queues.set(actor.app.id, next);
    void next.finally(() => {
      if (this.queues.get(actor.app.id) === next) this.queues.delete(actor.app.id);
    });
    return { batchID, count: input.paras.length };
  }

  /** Resolves when every batch queued so far has been sent (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all(this.queues.values());
  }

  private async sendOne(actor: Actor, input: z.infer<typeof batchSchema>, para: Record<string, string>, batchID: string): Promise<void> {
    const roomId = para.room ?? (await this.directRoom(actor, input.sender!, para.receiver!)).id;
    const { paras: _p, push: _push, skipTotalBadge: _s, sender, ...rest } = input;
    const body = { ...rest, message: substitute(input.message, para), extra: substitute(input.extra, para), batchID };
    if (sender !== undefined) await this.messages.sendAs(actor, { ...body, room: roomId, sender });
    else await this.messages.send(actor, roomId, body);
  }

  /** The pair's direct room, created (through RoomService, so members' sockets follow) when missing. */
  private async directRoom(actor: Actor, sender: string, receiver: string): Promise<RoomRecord> {
    const roomId = directRoomId(sender, receiver);
    const existing = await this.store.getRoom(actor.app.id, roomId);
    if (existing) return existing;
    try {
      await this.rooms.create(actor, { roomType: 'direct', members: [sender, receiver] }, false);
    } catch (err) {
      if (!isRoomExists(err)) throw err;
    }
    const room = await this.store.getRoom(actor.app.id, roomId);
    if (!room) throw Errors.notFound('ROOM', roomId);
    return room;
  }

  /** `GET /messages/batch?batchID=`: the messages one batch sent (api-doc OLD message/Message-Query-batch.md) → `{count, data}`. */
  async batchMessages(actor: Actor, batchID: string | undefined) {
    authorize(actor, 'messages.crossRoom');
    const idValue = parseInput(id, batchID ?? '');
    const { total, messages } = await this.store.listAppMessages(actor.app.id, { batchID: idValue, limit: 1000 });
    return { count: total, data: await this.present.messages(actor.app.id, messages) };
  }

  /** `GET /admin/messages?startDate&endDate&limit`: messages across rooms, newest first (api-doc admin/Admin-List-Messages.md). */
  async adminList(actor: Actor, query: { limit: number; from?: number; to?: number }) {
    authorize(actor, 'messages.crossRoom');
    const q = parseInput(adminListSchema, query);
    const { total, messages } = await this.store.listAppMessages(actor.app.id, q);
    return { totalCount: total, data: await this.present.messages(actor.app.id, messages) };
  }
}

/** `$name$` → the recipient's value, in strings anywhere in the value (message text or extra). */
function substitute(value: unknown, para: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\$[^$\s]{1,64}\$/g, (token) => (Object.hasOwn(para, token) ? para[token]! : token));
  if (Array.isArray(value)) return value.map((v) => substitute(v, para));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, para);
    return out;
  }
  return value;
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const batchInputs = { send: batchSchema };
