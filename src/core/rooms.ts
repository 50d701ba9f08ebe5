import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { CONTROL_TOPIC, roomTopic, userTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { RoomRecord } from './models.js';
import { allows, asUser, authorize, isBanned, isSuperuser } from './permissions.js';
import type { Presenter } from './presenter.js';
import { newId } from './secrets.js';
import type { MessageService } from './messages.js';
import { roomDelivery } from './messages.js';
import { type Clock, systemClock } from './clock.js';
import type { DeliveryService, MembershipEvent } from './delivery.js';
import { requireMessage, requireRoom, requireRoomFor } from './lookup.js';
import { parseInput } from './validate.js';
import { isValidId } from './limits.js';
import { type RoomView, clientView, quittedRoomView } from './views.js';
import { ownValue, setOwn } from './own.js';
import { parsePrefFilter, prefMatches } from './pref-filter.js';

const id = z.string().trim().min(1).max(128);
const ids = z.array(id).max(1000);
/** A room id a client may choose: the documented id set, outside the `dm:` space of direct rooms. */
const chosenRoomId = id.refine((v) => isValidId(v) && !v.startsWith(DIRECT_PREFIX), {
  message: 'use 1-128 of A-Z a-z 0-9 _ . @ : + = - (ids starting with dm: are reserved for direct rooms)',
});
const tags = z.array(z.string().max(128)).max(100);
const badgeTagsSchema = z.looseObject({ tags: tags.optional() });
/** IMKIT keeps extParams as a JSON string; accept an object too and store its JSON. */
const extParams = z.union([z.string().max(16_384), z.record(z.string(), z.unknown())]).transform((v) =>
  typeof v === 'string' ? v : JSON.stringify(v),
);

const roomFields = {
  name: z.string().max(256).optional(),
  cover: z.string().max(2048).optional(),
  description: z.string().max(4096).optional(),
  roomTags: tags.optional(),
  extParams: extParams.optional(),
  systemMessage: z.boolean().optional(),
  /** IMKIT's `isPublic`: anyone in the application may join (POST /rooms/:id/join). */
  isPublic: z.boolean().optional(),
  /** IMKIT: "Webhook key or URL" (a URL, or a key of the application's named webhooks). */
  webhook: z.string().trim().max(2048).nullable().optional(),
  botMode: z.boolean().optional(),
  botState: z.string().max(256).nullable().optional(),
};
const createSchema = z.looseObject({
  _id: chosenRoomId.optional(),
  roomType: z.enum(['direct', 'group']).optional(),
  members: ids.optional(),
  owner: id.optional(),
  invitee: z.union([id, ids]).optional(),
  invitationRequired: z.boolean().optional(),
  ...roomFields,
});
const updateSchema = z.looseObject({
  ...roomFields,
  owner: id.optional(),
  managers: ids.optional(),
  status: z.union([z.literal(0), z.literal(1)]).optional(),
});
const addMembersSchema = z.looseObject({ invitees: ids.min(1), systemMessage: z.boolean().optional(), invitationRequired: z.boolean().optional() });
const removeMembersSchema = z.looseObject({ members: ids.min(1), systemMessage: z.boolean().optional() });
/** `role` is the one property with a meaning; any other name is a custom property (api-doc update-member-property.md). */
const memberPropertySchema = z.object({ property: z.string().trim().min(1).max(64), value: z.unknown() });
const roleValue = z.enum(['admin', 'member']);
/** Names a custom property may not take: the fields `memberProperties` already has, and prototype keys. */
const RESERVED_PROPERTIES = new Set(['client', 'lastRead', 'role', 'joinedAt', 'pref', 'clearedAt', '__proto__', 'constructor', 'prototype']);
const lastReadSchema = z.looseObject({ message: id });

/** `q` filter values SDKs send: a plain value, `{$in:[…]}` or `{$all:[…]}`. */
const filterValue = z.union([
  z.string(),
  z.strictObject({ $in: z.array(z.string()) }),
  z.strictObject({ $all: z.array(z.string()) }),
]);
const querySchema = z.strictObject({ members: filterValue.optional(), roomTags: filterValue.optional() });
type FilterValue = z.infer<typeof filterValue>;

/** The request bodies this service validates, by operation (routes reference them for the protocol reference). */
export const roomInputs = {
  badgesByTags: badgeTagsSchema,
  create: createSchema,
  update: updateSchema,
  addMembers: addMembersSchema,
  removeMembers: removeMembersSchema,
  memberProperty: memberPropertySchema,
  lastRead: lastReadSchema,
};

export interface ListQuery {
  skip: number;
  limit: number;
  sort?: string;
  q?: string;
  sortUnreadFirst?: boolean;
  /** Only rooms with a message, a change or a creation after this time (ms). */
  updatedAfter?: number;
  /** JSON filter on the caller's own room preference (`pref=`). */
  pref?: string;
}

const DIRECT_PREFIX = 'dm:';

/**
 * Deterministic id for the direct room of a pair, so creating it twice finds the same room.
 * It lives in the `dm:` space no client-chosen id may use, so nobody can claim a pair's id
 * ahead of them (a direct room's id is always derived, never chosen).
 */
export function directRoomId(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  return DIRECT_PREFIX + createHash('sha256').update(`${x}\u0000${y}`).digest('hex').slice(0, 32);
}

function matches(values: readonly string[], filter: FilterValue): boolean {
  if (typeof filter === 'string') return values.includes(filter);
  if ('$in' in filter) return filter.$in.some((v) => values.includes(v));
  return filter.$all.every((v) => values.includes(v));
}

const SORT_KEYS: Record<string, (r: RoomRecord) => number | string> = {
  lastMessage: (r) => r.lastActivityAt,
  createdTime: (r) => r.createdAt,
  updatedAt: (r) => r.updatedAt,
  name: (r) => r.name ?? '',
};

/** Invitations to invitation-only rooms (InvitationService). */
export interface Invitations {
  invite(actor: Actor, room: RoomRecord, invitees: readonly string[]): Promise<void>;
  admit(appId: string, room: RoomRecord, userId: string): Promise<boolean>;
  roomDeleted(appId: string, roomId: string): Promise<void>;
}

/** User groups in rooms (GroupService): a group joining or leaving brings or takes its users. */
export interface GroupMembership {
  roomGained(actor: Actor, roomId: string, memberIds: readonly string[]): Promise<void>;
  roomLost(actor: Actor, roomId: string, memberIds: readonly string[]): Promise<void>;
}

/** Rooms and their membership. Messages live in MessageService. */
export class RoomService {
  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private system: MessageService,
    private clock: Clock = systemClock,
    private delivery?: DeliveryService,
    private invitations?: Invitations,
  ) {}

  private groups?: GroupMembership;

  /** Set after construction: GroupService needs this service to apply its changes. */
  useGroups(groups: GroupMembership): void {
    this.groups = groups;
  }

  /**
   * The room as the actor sees it (`mute`: the viewer's muted rooms; `blocked`: whom they
   * blocked; both when already loaded).
   */
  async view(actor: Actor, room: RoomRecord, mute?: string[], blocked?: ReadonlySet<string>): Promise<RoomView> {
    const userId = actor.kind === 'user' ? actor.userId : undefined;
    if (mute === undefined && userId) mute = (await this.store.getUser(actor.app.id, userId))?.mute;
    const hidden = room.roomType === 'direct' ? undefined : (blocked ?? (await this.system.hiddenSenders(actor, room)));
    return this.present.room(actor.app.id, room, { userId, isSuperuser: isSuperuser(actor, room), mute, hidden });
  }

  /**
   * `POST /rooms` (caller not joined) and `POST /rooms/createAndJoin` (caller joins; `invitee`
   * as a string makes a direct room, as an array a group).
   */
  async create(actor: Actor, body: unknown, join: boolean): Promise<RoomView> {
    authorize(actor, 'rooms.create');
    const input = parseInput(createSchema, body);
    if (input.webhook != null || input.botMode !== undefined || input.botState != null) authorize(actor, 'rooms.webhook');
    const invitees = input.invitee === undefined ? [] : typeof input.invitee === 'string' ? [input.invitee] : input.invitee;
    const roomType = input.roomType ?? (typeof input.invitee === 'string' ? 'direct' : 'group');
    const me = actor.kind === 'user' ? actor.userId : undefined;
    // `invitationRequired`: invitees are invited, not added (group rooms).
    const inviteOnly = input.invitationRequired === true && roomType === 'group' && this.invitations !== undefined;
    const members = [...new Set([...(join && me ? [me] : []), ...(input.members ?? []), ...(inviteOnly ? [] : invitees)])];
    if (roomType === 'direct' && members.length !== 2) {
      throw Errors.invalidInput('a direct room has exactly two members');
    }
    await this.requireUsers(actor.app.id, inviteOnly ? [...members, ...invitees] : members);
    const roomId = roomType === 'direct' ? directRoomId(members[0]!, members[1]!) : (input._id ?? newId());
    if (roomType === 'direct' && input._id !== undefined && input._id !== roomId) {
      throw Errors.invalidInput("_id: a direct room's id is derived from its two members; leave it out");
    }
    const now = this.clock.now();
    const room: RoomRecord = {
      id: roomId,
      name: input.name,
      cover: input.cover,
      description: input.description,
      roomType,
      owner: input.owner ?? (roomType === 'group' ? me : undefined),
      managers: [],
      members,
      memberState: Object.fromEntries(members.map((m) => [m, { joinedAt: now }])),
      roomTags: input.roomTags ?? [],
      extParams: input.extParams,
      ...(roomType === 'group' && input.isPublic ? { isPublic: true } : {}),
      webhook: input.webhook || undefined,
      botMode: input.botMode,
      botState: input.botState ?? undefined,
      status: 1,
      systemMessage: input.systemMessage ?? false,
      ...(inviteOnly ? { invitationRequired: true } : {}),
      lastActivityAt: now,
      createdAt: now,
      updatedAt: now,
    };
    if (room.owner && !members.includes(room.owner)) await this.requireUsers(actor.app.id, [room.owner]);
    if (!(await this.store.createRoom(actor.app.id, room))) {
      const existing = await requireRoom(this.store, actor.app.id, roomId);
      // Creating an existing direct room again is how clients "open" a chat: return it, to
      // one of its two members (or the API key) only.
      const isPair = existing.roomType === 'direct' && members.every((m) => ownValue(existing.memberState, m));
      if (isPair && (!me || ownValue(existing.memberState, me))) return this.view(actor, existing);
      throw Errors.roomExists(roomId);
    }
    this.membershipChanged(actor.app.id, roomId, members, []);
    await this.announce(actor.app.id, room);
    await this.groups?.roomGained(actor, roomId, members);
    if (inviteOnly) await this.invitations!.invite(actor, room, invitees);
    return this.view(actor, room);
  }

  async list(actor: Actor, query: ListQuery): Promise<{ totalCount: number; data: RoomView[] }> {
    const me = asUser(actor, 'rooms.list');
    const filter = this.parseFilter(query.q);
    const prefFilter = parsePrefFilter(query.pref);
    const ids = await this.store.userRoomIds(actor.app.id, me.userId);
    let rooms = (await this.store.getRooms(actor.app.id, ids)).filter(
      (r): r is RoomRecord => r !== undefined && !isBanned(me.userId, r),
    );
    if (filter.members) rooms = rooms.filter((r) => matches(r.members, filter.members!));
    if (filter.roomTags) rooms = rooms.filter((r) => matches(r.roomTags, filter.roomTags!));
    if (prefFilter) rooms = rooms.filter((r) => prefMatches(ownValue(r.memberState, me.userId)?.pref, prefFilter));
    const after = query.updatedAfter;
    if (after !== undefined) rooms = rooms.filter((r) => r.lastActivityAt > after || r.updatedAt > after || r.createdAt > after);
    rooms.sort(this.comparator(query.sort ?? '-lastMessage'));
    const mute = (await this.store.getUser(actor.app.id, me.userId))?.mute ?? [];
    const blocked = await this.system.hiddenSenders(actor, { roomType: 'group' });
    let views = await Promise.all(rooms.map((r) => this.view(actor, r, mute, blocked)));
    if (query.sortUnreadFirst) {
      views = [...views.filter((v) => (v.unread as number) > 0), ...views.filter((v) => !((v.unread as number) > 0))];
    }
    const page = query.limit === 0 ? views.slice(query.skip) : views.slice(query.skip, query.skip + query.limit);
    return { totalCount: views.length, data: page };
  }

  /**
   * `GET /rooms/quitted`: the rooms the caller left or was removed from and has not rejoined,
   * with limited room information (no members, no messages) and `pref.quittedAt`.
   */
  async quitted(actor: Actor): Promise<{ data: Record<string, unknown>[] }> {
    const me = asUser(actor, 'rooms.list');
    const quits = await this.store.listQuittedRooms(actor.app.id, me.userId);
    const rooms = await this.store.getRooms(actor.app.id, quits.map((q) => q.roomId));
    const data: Record<string, unknown>[] = [];
    quits.forEach((q, i) => {
      const room = rooms[i];
      if (room) data.push(quittedRoomView(room, q));
    });
    return { data };
  }

  /**
   * `GET /rooms/ids?skip=&limit=` (room/Room-List-Room-IDs.md): the ids of the caller's rooms
   * (as `GET /rooms` lists them: not those they are banned from), in id order; limit 0 = all.
   */
  async ids(actor: Actor, skip: number, limit: number): Promise<{ totalCount: number; data: string[] }> {
    const me = asUser(actor, 'rooms.list');
    const rooms = await this.store.getRooms(actor.app.id, await this.store.userRoomIds(actor.app.id, me.userId));
    const ids = rooms.flatMap((r) => (r && !isBanned(me.userId, r) ? [r.id] : []));
    return { totalCount: ids.length, data: limit === 0 ? ids.slice(skip) : ids.slice(skip, skip + limit) };
  }

  /**
   * `GET /rooms/:id/exists` (room/Room-Check-exists.md). A direct room's id is derived from
   * its pair, so anyone could ask whether two users talk: it exists only for whom may read it.
   */
  async exists(actor: Actor, roomId: string): Promise<{ exists: boolean }> {
    authorize(actor, 'rooms.exists');
    const room = await this.store.getRoomForUser(actor.app.id, roomId, actor.kind === 'user' ? actor.userId : '');
    if (!room) return { exists: false };
    return { exists: room.roomType !== 'direct' || allows(actor, 'rooms.read', room) };
  }

  async get(actor: Actor, roomId: string): Promise<RoomView> {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'rooms.read', room);
    return this.view(actor, room);
  }

  async update(actor: Actor, roomId: string, body: unknown): Promise<RoomView> {
    const input = parseInput(updateSchema, body);
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'rooms.update', room);
    if (input.webhook !== undefined || input.botMode !== undefined || input.botState !== undefined) authorize(actor, 'rooms.webhook');
    if (input.owner !== undefined || input.managers !== undefined) {
      authorize(actor, 'rooms.updateOwnership', room);
      for (const m of [...(input.owner ? [input.owner] : []), ...(input.managers ?? [])]) {
        if (!ownValue(room.memberState, m)) throw Errors.invalidInput(`'${m}' is not a member of this room`);
      }
    }
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => ({
      ...r,
      name: input.name ?? r.name,
      cover: input.cover ?? r.cover,
      description: input.description ?? r.description,
      roomTags: input.roomTags ?? r.roomTags,
      extParams: input.extParams ?? r.extParams,
      systemMessage: input.systemMessage ?? r.systemMessage,
      isPublic: r.roomType === 'group' ? (input.isPublic ?? r.isPublic) : undefined,
      // "" or null removes the room's webhook (the application's default applies again).
      webhook: input.webhook === undefined ? r.webhook : input.webhook || undefined,
      botMode: input.botMode ?? r.botMode,
      botState: input.botState === undefined ? r.botState : (input.botState ?? undefined),
      owner: input.owner ?? r.owner,
      managers: input.managers ?? r.managers,
      status: input.status ?? r.status,
      updatedAt: this.clock.now(),
    }));
    if (!updated) throw Errors.notFound('ROOM', roomId);
    await this.announce(actor.app.id, updated);
    return this.view(actor, updated);
  }

  async remove(actor: Actor, roomId: string): Promise<{ n: number; ok: number }> {
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'rooms.delete', room);
    await this.store.deleteRoom(actor.app.id, roomId);
    await this.invitations?.roomDeleted(actor.app.id, roomId);
    this.bus.publish(CONTROL_TOPIC, { kind: 'room-deleted', appId: actor.app.id, roomId, members: room.members });
    return { n: 1, ok: 1 };
  }

  /**
   * `POST /rooms/:id/join`: a user joins a public group room (IMKIT's `isPublic`). Private
   * groups (the default) take new members only through `POST /rooms/:id/members`; direct
   * rooms are closed. Joining a room one is already in answers the room.
   */
  async join(actor: Actor, roomId: string): Promise<RoomView> {
    const me = asUser(actor, 'rooms.join');
    const room = await requireRoom(this.store, actor.app.id, roomId);
    if (isBanned(me.userId, room)) throw Errors.bannedFromRoom();
    if (ownValue(room.memberState, me.userId)) return this.view(actor, room);
    if (room.roomType === 'direct') throw Errors.directRoomClosed('join');
    // An invitation admits to any group room (an invitation-only room needs one); without one,
    // only a public room can be joined.
    const invited = this.invitations ? await this.invitations.admit(actor.app.id, room, me.userId) : false;
    if (!invited && room.invitationRequired) throw Errors.invitationRequired();
    if (!invited && room.isPublic !== true) throw Errors.roomClosed();
    const updated = await this.changeMembers(actor, room, [me.userId], [], 'JOIN_ROOM');
    if (updated.systemMessage) await this.system.post(actor.app.id, updated, me.userId, 'joinRoom', '', {});
    return this.view(actor, updated);
  }

  async addMembers(actor: Actor, roomId: string, body: unknown): Promise<RoomView> {
    const input = parseInput(addMembersSchema, body);
    const room = await requireRoom(this.store, actor.app.id, roomId);
    authorize(actor, 'members.add', room);
    if (room.roomType === 'direct') throw Errors.directRoomClosed('members');
    const clients = await this.requireUsers(actor.app.id, input.invitees);
    if ((room.invitationRequired || input.invitationRequired) && this.invitations) {
      await this.invitations.invite(actor, room, input.invitees);
      return this.view(actor, room);
    }
    const added = input.invitees.filter((m) => !ownValue(room.memberState, m));
    // Members so far only through a user group become members in person.
    const inPerson = input.invitees.filter((m) => {
      const state = ownValue(room.memberState, m);
      return state?.viaGroups && !state.direct;
    });
    let updated = await this.changeMembers(actor, room, [...added, ...inPerson], [], 'ADD_MEMBERS');
    if (this.groups && added.length > 0) {
      await this.groups.roomGained(actor, roomId, added);
      updated = await requireRoom(this.store, actor.app.id, roomId);
    }
    if (added.length > 0 && (input.systemMessage ?? false)) {
      const invitees = clients.filter((c) => added.includes(c.id));
      await this.system.post(actor.app.id, updated, actorId(actor), 'addMembers', invitees.map((c) => c.nickname).join(', '), {
        extra: { invitees },
      });
    }
    return this.view(actor, updated);
  }

  /** Kick members (owner/admins) or leave (any member, own id). */
  async removeMembers(actor: Actor, roomId: string, body: unknown): Promise<RoomView> {
    const input = parseInput(removeMembersSchema, body);
    const room = await requireRoom(this.store, actor.app.id, roomId);
    const me = actorId(actor);
    const others = input.members.filter((m) => m !== me);
    authorize(actor, others.length > 0 ? 'members.removeOthers' : 'members.leave', room);
    const removed = input.members.filter((m) => ownValue(room.memberState, m));
    // A user group leaving takes the users who were here only through it.
    await this.groups?.roomLost(actor, roomId, removed);
    const updated = await this.changeMembers(actor, room, [], removed, 'DELETE_MEMBERS');
    if (removed.length > 0 && (input.systemMessage ?? false)) {
      const members = await this.present.clients(actor.app.id, removed);
      if (others.length === 0) {
        await this.system.post(actor.app.id, updated, me, 'leaveRoom', '', { extra: { members } });
      } else {
        // One `deleteMember` per member, the notice both SDKs render (Flutter reads extra.members[0]).
        for (const member of members) {
          await this.system.post(actor.app.id, updated, me, 'deleteMember', String(member.nickname), { extra: { members: [member] } });
        }
      }
    }
    return this.view(actor, updated);
  }

  /**
   * `PUT /rooms/:id/member/:client {property, value}`: `role` (owner/admins) makes or unmakes an
   * admin; any other property is custom data a member may set on themselves and superusers on anyone.
   */
  async setMemberProperty(actor: Actor, roomId: string, client: string, body: unknown): Promise<RoomView> {
    const input = parseInput(memberPropertySchema, body);
    const room = await requireRoom(this.store, actor.app.id, roomId);
    const isRole = input.property === 'role';
    const role = isRole ? parseInput(z.object({ value: roleValue }), { value: input.value }).value : undefined;
    if (!isRole && RESERVED_PROPERTIES.has(input.property)) throw Errors.invalidInput(`property: '${input.property}' is reserved`);
    authorize(actor, isRole ? 'members.setRole' : 'members.setProperty', room, { sender: client });
    if (!ownValue(room.memberState, client)) throw Errors.invalidInput(`'${client}' is not a member of this room`);
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => {
      const state = ownValue(r.memberState, client);
      if (!state) return undefined;
      if (role) state.role = role;
      else if (input.value === null || input.value === undefined) delete state.properties?.[input.property];
      else state.properties = { ...state.properties, [input.property]: input.value };
      r.updatedAt = this.clock.now();
      return r;
    });
    if (!updated) throw Errors.notFound('ROOM', roomId);
    if (role === 'admin' && updated.systemMessage) {
      const [member] = await this.present.clients(actor.app.id, [client]);
      await this.system.post(actor.app.id, updated, actorId(actor), 'assignAdmin', '', { member });
    }
    await this.announce(actor.app.id, updated);
    return this.view(actor, updated);
  }

  /** `PUT /rooms/:id/lastRead`: answers the room's remaining unread count for the member. */
  async markRead(actor: Actor, roomId: string, body: unknown) {
    const me = asUser(actor, 'messages.markRead');
    const input = parseInput(lastReadSchema, body);
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.read', room);
    const message = await requireMessage(this.store, actor.app.id, input.message, roomId);
    await this.store.setLastRead(actor.app.id, roomId, me.userId, message.id);
    this.bus.publish(roomTopic(actor.app.id, roomId), {
      kind: 'deliver',
      event: 'lastRead',
      payload: { roomID: roomId, memberID: me.userId, messageID: message.id },
    });
    const badge = await this.store.countMessagesAfter(actor.app.id, roomId, message.id);
    return { client: me.userId, lastRead: message.id, badge };
  }

  /** Typing indicator (socket `typing`, `POST /rooms/:id/typing`): to the room's sockets. */
  async typing(actor: Actor, roomId: string, text: unknown) {
    const me = asUser(actor, 'me.read');
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'messages.typing', room);
    const [senderInfo] = await this.present.clients(actor.app.id, [me.userId]);
    const payload = { room: roomId, sender: me.userId, senderInfo, message: typeof text === 'string' ? text : '' };
    this.bus.publish(roomTopic(actor.app.id, roomId), { kind: 'deliver', event: 'typing', payload, sender: me.userId });
    return payload;
  }

  /**
   * `GET /me/badge`: total unread across the user's rooms (optionally only rooms with given
   * tags), counted as the room list counts it: rooms they are banned from and messages of
   * users they blocked (group rooms) are not theirs to read.
   */
  async badge(actor: Actor, roomTags: string[]): Promise<{ badge: number }> {
    const me = asUser(actor, 'me.read');
    const ids = await this.store.userRoomIds(actor.app.id, me.userId);
    const rooms = await Promise.all(ids.map((id) => this.store.getRoomForUser(actor.app.id, id, me.userId)));
    const blocked = (await this.store.listBlocks(actor.app.id, me.userId)).map((b) => b.blockee);
    let badge = 0;
    for (const r of rooms) {
      if (!r || !allows(actor, 'messages.read', r)) continue;
      if (roomTags.length > 0 && !roomTags.some((t) => r.roomTags.includes(t))) continue;
      badge += await this.store.countMessagesAfter(actor.app.id, r.id, r.member?.lastRead, r.roomType === 'direct' ? [] : blocked);
    }
    return { badge };
  }

  /**
   * `POST /badges/byRoomTags {tags}`: unread per tag over the caller's rooms carrying it, and a
   * total over the rooms carrying every tag (AND; all rooms when no tag is given). Rooms the
   * caller is banned from do not count.
   */
  async badgesByTags(actor: Actor, body: unknown): Promise<{ totalBadge: number; data: Record<string, number> }> {
    const me = asUser(actor, 'me.read');
    const asked = parseInput(badgeTagsSchema, body).tags;
    const rooms = (await this.store.getRooms(actor.app.id, await this.store.userRoomIds(actor.app.id, me.userId))).filter(
      (r): r is RoomRecord => r !== undefined && !isBanned(me.userId, r),
    );
    const wanted = asked && asked.length > 0 ? [...new Set(asked)] : [...new Set(rooms.flatMap((r) => r.roomTags))];
    const data: Record<string, number> = Object.fromEntries(wanted.map((t) => [t, 0]));
    let totalBadge = 0;
    for (const r of rooms) {
      const carried = wanted.filter((t) => r.roomTags.includes(t));
      const every = !asked?.length || carried.length === wanted.length;
      if (carried.length === 0 && !every) continue;
      const unread = await this.store.countMessagesAfter(actor.app.id, r.id, ownValue(r.memberState, me.userId)?.lastRead);
      for (const t of carried) data[t]! += unread;
      if (every) totalBadge += unread;
    }
    return { totalBadge, data };
  }

  /**
   * A room webhook's `toBotState` (bot mode only): moves the room's bot state and tells its
   * members. False when the room is gone or not in bot mode.
   */
  async moveBotState(appId: string, roomId: string, state: string): Promise<boolean> {
    let applied = false;
    const updated = await this.store.updateRoom(appId, roomId, (r) => {
      applied = r.botMode === true && r.botState !== state;
      return applied ? { ...r, botState: state, updatedAt: this.clock.now() } : undefined;
    });
    if (updated && applied) await this.announce(appId, updated);
    return applied;
  }

  /** Applies a membership change atomically and tells every node and every client concerned. */
  private async changeMembers(actor: Actor, room: RoomRecord, add: string[], remove: string[], event?: MembershipEvent): Promise<RoomRecord> {
    if (add.length === 0 && remove.length === 0) return room;
    const now = this.clock.now();
    // The room webhook's event is stored with the change itself (the outbox).
    const outbox = event && (await this.delivery?.forMembership(actor.app.id, room, event, actorId(actor), event === 'DELETE_MEMBERS' ? remove : add));
    const updated = await this.store.updateRoom(actor.app.id, room.id, (r) => {
      for (const m of add) {
        const state = ownValue(r.memberState, m);
        // Already here through a user group: now in person too.
        if (state?.viaGroups) state.direct = true;
        if (state) continue;
        r.members.push(m);
        setOwn(r.memberState, m, { joinedAt: now });
      }
      const gone = new Set(remove);
      r.members = r.members.filter((m) => !gone.has(m));
      for (const m of remove) if (Object.hasOwn(r.memberState, m)) delete r.memberState[m];
      r.managers = r.managers.filter((m) => !gone.has(m));
      if (r.owner && gone.has(r.owner)) r.owner = undefined;
      r.updatedAt = now;
      return r;
    }, outbox);
    if (!updated) throw Errors.notFound('ROOM', room.id);
    // A banned user added back as a member still gets no events until unbanned.
    this.membershipChanged(actor.app.id, room.id, add.filter((m) => !isBanned(m, updated)), remove);
    await this.announce(actor.app.id, updated, remove);
    return updated;
  }

  /**
   * A membership change computed on the stored room by `edit` (user groups), applied atomically
   * and told to every node and client like any other. `edit` may run more than once (CAS retry).
   */
  async editMembers(actor: Actor, roomId: string, edit: (r: RoomRecord) => { added: string[]; removed: string[] }): Promise<void> {
    let change = { added: [] as string[], removed: [] as string[] };
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => {
      change = edit(r);
      if (change.added.length === 0 && change.removed.length === 0) return undefined;
      r.updatedAt = this.clock.now();
      return r;
    });
    if (!updated || (change.added.length === 0 && change.removed.length === 0)) return;
    this.membershipChanged(actor.app.id, roomId, change.added.filter((m) => !isBanned(m, updated)), change.removed);
    await this.announce(actor.app.id, updated, change.removed);
  }

  private membershipChanged(appId: string, roomId: string, added: string[], removed: string[]): void {
    this.bus.publish(CONTROL_TOPIC, { kind: 'membership', appId, roomId, added, removed });
  }

  /** `room` event with the full room to its members, and to users just removed (so they see it go). */
  private async announce(appId: string, room: RoomRecord, removed: string[] = []): Promise<void> {
    const view = await this.present.room(appId, room);
    this.bus.publish(roomTopic(appId, room.id), roomDelivery(view));
    for (const userId of removed) this.bus.publish(userTopic(appId, userId), roomDelivery(view));
  }

  private async requireUsers(appId: string, userIds: readonly string[]) {
    const known = await this.store.getUsers(appId, userIds);
    const missing = userIds.filter((_, i) => !known[i]);
    if (missing.length > 0) throw Errors.notFound('CLIENT', missing.join(', '));
    return known.map((user, i) => clientView(user, userIds[i]!));
  }

  private parseFilter(q: string | undefined): z.infer<typeof querySchema> {
    if (q === undefined || q === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(q);
    } catch {
      throw Errors.invalidQuery('not valid JSON');
    }
    const result = querySchema.safeParse(parsed);
    if (!result.success) {
      throw Errors.invalidQuery('only members and roomTags filters ($in, $all) are supported');
    }
    return result.data;
  }

  private comparator(sort: string): (a: RoomRecord, b: RoomRecord) => number {
    const keys = sort
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((token) => {
        const desc = token.startsWith('-');
        const name = desc ? token.slice(1) : token;
        const key = Object.hasOwn(SORT_KEYS, name) ? SORT_KEYS[name] : undefined;
        if (!key) throw Errors.invalidInput(`sort: unknown key '${name}' (lastMessage, createdTime, updatedAt, name)`);
        return { key, desc };
      });
    return (a, b) => {
      for (const { key, desc } of keys) {
        const x = key(a);
        const y = key(b);
        if (x < y) return desc ? 1 : -1;
        if (x > y) return desc ? -1 : 1;
      }
      return 0;
    };
  }
}

const actorId = (actor: Actor): string | undefined => (actor.kind === 'user' ? actor.userId : undefined);
