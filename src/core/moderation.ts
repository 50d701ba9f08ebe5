import type { Bus } from '../bus/bus.js';
import { ownValue } from './own.js';
import { CONTROL_TOPIC, userTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { BlockRecord, RoomRecord } from './models.js';
import { asUser, authorize, isBanned } from './permissions.js';
import type { Presenter } from './presenter.js';
import { requireRoom, requireRoomFor, requireUser } from './lookup.js';
import { directRoomId } from './rooms.js';
import { type ClientView, clientView } from './views.js';
import { type Clock, systemClock } from './clock.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Personal blocks, room bans and notification mutes. What a block or ban does to sending
 * and reading lives with the rules it changes (MessageService, permissions); this module
 * records them and tells every node.
 */
export class ModerationService {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private clock: Clock = systemClock,
  ) {}

  // ---- personal blocks (`/blockStatus/my`) ----

  async block(actor: Actor, blockee: string) {
    const me = asUser(actor, 'me.block');
    if (blockee === me.userId) throw Errors.selfBlock('block');
    await requireUser(this.store, actor.app.id, blockee);
    // IMKIT answers a repeated block with 409 (api-doc moderation/block-user/block-a-user.md).
    if (await this.store.getBlock(actor.app.id, me.userId, blockee)) throw Errors.alreadyBlocked('list');
    const record: BlockRecord = { blocker: me.userId, blockee, createdAt: this.clock.now() };
    await this.store.putBlock(actor.app.id, record);
    this.bus.publish(CONTROL_TOPIC, { kind: 'blocks-changed', appId: actor.app.id, blocker: me.userId, blockee, blocked: true });
    return this.blockView(actor.app.id, record);
  }

  async unblock(actor: Actor, blockee: string) {
    const me = asUser(actor, 'me.block');
    const record = await this.store.getBlock(actor.app.id, me.userId, blockee);
    if (!record || !(await this.store.deleteBlock(actor.app.id, me.userId, blockee))) {
      throw Errors.blockNotFound(`You have not blocked '${blockee}'`);
    }
    this.bus.publish(CONTROL_TOPIC, { kind: 'blocks-changed', appId: actor.app.id, blocker: me.userId, blockee, blocked: false });
    return this.blockView(actor.app.id, record);
  }

  async myBlocks(actor: Actor, blockee?: string) {
    const me = asUser(actor, 'me.block');
    if (blockee !== undefined) {
      const record = await this.store.getBlock(actor.app.id, me.userId, blockee);
      if (!record) throw Errors.blockNotFound(`You have not blocked '${blockee}'`);
      return this.blockView(actor.app.id, record);
    }
    const records = await this.store.listBlocks(actor.app.id, me.userId);
    return { totalCount: records.length, data: await Promise.all(records.map((r) => this.blockView(actor.app.id, r, true))) };
  }

  /**
   * IMKIT's BlockStatus (api-doc moderation/block-user/*.md): `blockee` populated, `blocker` an id,
   * `room` the pair's direct room id, or in lists a room summary.
   */
  private async blockView(appId: string, record: BlockRecord, inList = false) {
    const [blockee] = await this.present.clients(appId, [record.blockee]);
    const roomId = directRoomId(record.blocker, record.blockee);
    return {
      appID: appId,
      blocker: record.blocker,
      blockee,
      room: inList ? await this.roomSummary(appId, roomId, 'direct') : roomId,
      createdAt: iso(record.createdAt),
      createdAtMS: record.createdAt,
      updatedAt: iso(record.createdAt),
      updatedAtMS: record.createdAt,
    };
  }

  /** The `room` of a listed block or ban: `{_id, id, roomType, createdTimeMS}`. */
  private async roomSummary(appId: string, roomId: string, fallbackType: string, known?: RoomRecord) {
    const room = known ?? (await this.store.getRoom(appId, roomId));
    return { _id: roomId, id: roomId, roomType: room?.roomType ?? fallbackType, createdTimeMS: room?.createdAt ?? null };
  }

  // ---- room bans (`/blockStatus/room/:roomID`) ----

  /** A banned user keeps no access: cannot send, read or rejoin; their sockets stop at once. */
  async ban(actor: Actor, roomId: string, blockee: string) {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'members.ban', room);
    if (actor.kind === 'user' && blockee === actor.userId) throw Errors.selfBlock('ban');
    if (room.owner === blockee) throw Errors.cannotBanOwner();
    await requireUser(this.store, actor.app.id, blockee);
    const by = actor.kind === 'user' ? actor.userId : undefined;
    const now = this.clock.now();
    let already = false;
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => {
      already = isBanned(blockee, r);
      if (already) return undefined;
      r.banned = { ...r.banned, [blockee]: { by, at: now } };
      r.updatedAt = now;
      return r;
    });
    if (!updated) throw Errors.notFound('ROOM', roomId);
    // A repeated ban is a 409, as IMKIT documents (moderation/ban-member/ban-a-member.md).
    if (already) throw Errors.alreadyBlocked('room');
    this.bus.publish(CONTROL_TOPIC, { kind: 'membership', appId: actor.app.id, roomId, added: [], removed: [blockee] });
    return this.banView(actor.app.id, updated, blockee);
  }

  async unban(actor: Actor, roomId: string, blockee: string) {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'members.ban', room);
    if (!isBanned(blockee, room)) throw Errors.blockNotFound(`'${blockee}' is not banned from this room`);
    const view = await this.banView(actor.app.id, room, blockee);
    const now = this.clock.now();
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => {
      if (!r.banned || !isBanned(blockee, r)) return undefined;
      const { [blockee]: _gone, ...rest } = r.banned;
      r.banned = rest;
      r.updatedAt = now;
      return r;
    });
    if (ownValue(updated?.memberState, blockee)) {
      this.bus.publish(CONTROL_TOPIC, { kind: 'membership', appId: actor.app.id, roomId, added: [blockee], removed: [] });
    }
    return view;
  }

  async bans(actor: Actor, roomId: string, blockee?: string) {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'members.ban', room);
    if (blockee !== undefined) {
      if (!isBanned(blockee, room)) throw Errors.blockNotFound(`'${blockee}' is not banned from this room`);
      return this.banView(actor.app.id, room, blockee);
    }
    const ids = Object.keys(room.banned ?? {});
    return { totalCount: ids.length, data: await Promise.all(ids.map((id) => this.banView(actor.app.id, room, id, true))) };
  }

  /**
   * A ban as IMKIT shows it (api-doc moderation/ban-member/*.md): on ban/unban `blocker` is an id
   * and `room` the room id; in lists both are populated (`blocker` a client, `room` a summary).
   */
  private async banView(appId: string, room: RoomRecord, blockee: string, inList = false) {
    const ban = room.banned && isBanned(blockee, room) ? room.banned[blockee] : undefined;
    const [blockeeView, blockerView] = await this.present.clients(appId, [blockee, ...(ban?.by ? [ban.by] : [])]);
    const at = ban ? iso(ban.at) : null;
    return {
      appID: appId,
      room: inList ? await this.roomSummary(appId, room.id, room.roomType, room) : room.id,
      blockee: blockeeView,
      blocker: inList ? (blockerView ?? null) : (ban?.by ?? null),
      createdAt: at,
      createdAtMS: ban?.at ?? null,
      updatedAt: at,
      updatedAtMS: ban?.at ?? null,
    };
  }

  // ---- notification mutes ----

  /** `POST`/`DELETE /me/mute/:room` (the user) and `/admin/clients/:uid/mute/:room` (API key). */
  async setMute(actor: Actor, roomId: string, muted: boolean, userId?: string): Promise<ClientView> {
    let target: string;
    if (userId !== undefined) {
      authorize(actor, 'users.manage');
      target = userId;
    } else {
      target = asUser(actor, 'me.update').userId;
      authorize(actor, 'rooms.mute', await requireRoomFor(this.store, actor, roomId));
    }
    const now = this.clock.now();
    const updated = await this.store.updateUser(actor.app.id, target, (user) => {
      const mute = new Set(user.mute ?? []);
      if (muted) mute.add(roomId);
      else mute.delete(roomId);
      return { ...user, mute: [...mute], updatedAt: now };
    });
    if (!updated) throw Errors.notFound('CLIENT', target);
    this.bus.publish(CONTROL_TOPIC, { kind: 'users-changed', appId: actor.app.id, userIds: [target] });
    const view = clientView(updated, target);
    this.bus.publish(userTopic(actor.app.id, target), { kind: 'deliver', event: 'client', payload: view });
    return view;
  }

}

