import { z } from 'zod';
import { ownValue } from './own.js';
import type { Bus } from '../bus/bus.js';
import { userTopic } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { PrefRecord } from './models.js';
import { asUser, authorize } from './permissions.js';
import { requireRoomFor } from './lookup.js';
import { parseInput } from './validate.js';

const prefKey = z.string().trim().min(1).max(128);

/** A room preference as IMKIT documents it (config/RoomPref-Create-or-Update.md); other keys are kept as sent. */
const roomPrefSchema = z.looseObject({
  tags: z.array(z.string().max(128)).max(100).optional(),
  tagColors: z.record(z.string(), z.unknown()).optional(),
  folder: z.string().max(256).nullish(),
  muted: z.boolean().optional(),
  sticky: z.boolean().optional(),
  hidden: z.boolean().optional(),
  translation: z.boolean().optional(),
});
const RESERVED = new Set(['room', '__proto__', 'constructor', 'prototype']);

/**
 * A user's own preferences (`/me/pref`, events `myPrefChange`/`myPrefDelete`) and their
 * per-room preferences (`/roomPrefs`, event `roomPref`), each told to the user's other devices.
 * Room preferences live in the user's member state, so a room read for that user carries them.
 */
export class PrefService {
  constructor(
    private store: Store,
    private bus: Bus,
  ) {}

  /** `GET /me/pref` (an array, which the Vue SDK iterates) or one key (`?key=`). */
  async list(actor: Actor, key?: string): Promise<PrefRecord[] | PrefRecord> {
    const me = asUser(actor, 'me.read');
    const prefs = await this.store.listPrefs(actor.app.id, me.userId);
    if (key === undefined) return prefs;
    const pref = prefs.find((p) => p.key === key);
    if (!pref) throw Errors.prefNotFound(key);
    return pref;
  }

  /** `GET /me/prefs`: the same as a map. */
  async map(actor: Actor): Promise<Record<string, unknown>> {
    const prefs = (await this.list(actor)) as PrefRecord[];
    const out: Record<string, unknown> = {};
    for (const p of prefs) if (!RESERVED.has(p.key)) out[p.key] = p.data;
    return out;
  }

  /** `POST /me/pref/:key` with any JSON body → `{key, data}`, and `myPrefChange` to the user's devices. */
  async put(actor: Actor, key: string, data: unknown): Promise<PrefRecord> {
    const me = asUser(actor, 'me.update');
    const pref: PrefRecord = { key: parseInput(prefKey, key), data };
    await this.store.putPref(actor.app.id, me.userId, pref);
    this.bus.publish(userTopic(actor.app.id, me.userId), { kind: 'deliver', event: 'myPrefChange', payload: pref });
    return pref;
  }

  /** `DELETE /me/pref/:key` → `{}`, and `myPrefDelete` (the bare key) to the user's devices. */
  async remove(actor: Actor, key: string): Promise<Record<string, never>> {
    const me = asUser(actor, 'me.update');
    if (await this.store.deletePref(actor.app.id, me.userId, key)) {
      this.bus.publish(userTopic(actor.app.id, me.userId), { kind: 'deliver', event: 'myPrefDelete', payload: key });
    }
    return {};
  }

  /** `POST /roomPrefs/:room`: merges into the member's preference for the room; `roomPref` to their devices. */
  async setRoomPref(actor: Actor, roomId: string, body: unknown): Promise<Record<string, unknown>> {
    const me = asUser(actor, 'me.update');
    const input = parseInput(roomPrefSchema, body);
    await this.memberRoom(actor, roomId);
    const change: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) if (!RESERVED.has(k) && v !== undefined) change[k] = v;
    return this.updateRoomPref(actor, me.userId, roomId, (pref) => ({ ...pref, ...change }));
  }

  /** `DELETE /roomPrefs/:room/:key`: unsets one key. */
  async unsetRoomPref(actor: Actor, roomId: string, key: string): Promise<Record<string, unknown>> {
    const me = asUser(actor, 'me.update');
    await this.memberRoom(actor, roomId);
    return this.updateRoomPref(actor, me.userId, roomId, (pref) => {
      const { [key]: _gone, ...rest } = pref;
      return rest;
    });
  }

  /** `GET /roomPrefs`: the user's preferences for their rooms. */
  async listRoomPrefs(actor: Actor): Promise<{ totalCount: number; data: Record<string, unknown>[] }> {
    const me = asUser(actor, 'me.read');
    const ids = await this.store.userRoomIds(actor.app.id, me.userId);
    const data: Record<string, unknown>[] = [];
    for (const id of ids) {
      const pref = (await this.store.getRoomForUser(actor.app.id, id, me.userId))?.member?.pref;
      if (pref) data.push({ ...pref, room: id });
    }
    return { totalCount: data.length, data };
  }

  /**
   * `POST /roomPrefs/:room/group/:group` (config/RoomPrefGroup-Create-or-Update.md): merges into
   * the preference a group shares for a room. Any member of the room may set it; the Vue SDK
   * names the group by the room tag it is showing. No socket event: IMKIT documents none, and
   * `roomPref` carries a user's own preference, which this must not overwrite on their devices.
   */
  async setGroupRoomPref(actor: Actor, roomId: string, group: string, body: unknown): Promise<Record<string, unknown>> {
    asUser(actor, 'me.update');
    const input = parseInput(roomPrefSchema, body);
    const groupId = parseInput(prefKey, group);
    await this.memberRoom(actor, roomId);
    const change: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) if (!RESERVED.has(k) && v !== undefined) change[k] = v;
    const pref = await this.store.updateGroupRoomPref(actor.app.id, groupId, roomId, (p) => ({ ...p, ...change }));
    return { ...pref, room: roomId };
  }

  /** `DELETE /roomPrefs/:room/group/:group/:key` (config/RoomPrefGroup-Unset-a-key.md). */
  async unsetGroupRoomPref(actor: Actor, roomId: string, group: string, key: string): Promise<Record<string, unknown>> {
    asUser(actor, 'me.update');
    const groupId = parseInput(prefKey, group);
    await this.memberRoom(actor, roomId);
    const pref = await this.store.updateGroupRoomPref(actor.app.id, groupId, roomId, (p) => {
      const { [key]: _gone, ...rest } = p;
      return rest;
    });
    return { ...pref, room: roomId };
  }

  /** `GET /roomPrefs/group/:group` (config/RoomPrefGroup-List.md): the group's preferences for the caller's rooms. */
  async listGroupRoomPrefs(actor: Actor, group: string): Promise<{ totalCount: number; data: Record<string, unknown>[] }> {
    const me = asUser(actor, 'me.read');
    const groupId = parseInput(prefKey, group);
    const mine = new Set(await this.store.userRoomIds(actor.app.id, me.userId));
    const data = (await this.store.listGroupRoomPrefs(actor.app.id, groupId))
      .filter((p) => mine.has(p.room))
      .map((p) => ({ ...p.pref, room: p.room }));
    return { totalCount: data.length, data };
  }

  private async memberRoom(actor: Actor, roomId: string): Promise<void> {
    authorize(actor, 'rooms.read', await requireRoomFor(this.store, actor, roomId));
  }

  private async updateRoomPref(
    actor: Actor,
    userId: string,
    roomId: string,
    change: (pref: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    let pref: Record<string, unknown> | undefined;
    const updated = await this.store.updateRoom(actor.app.id, roomId, (r) => {
      const state = ownValue(r.memberState, userId);
      if (!state) return undefined;
      pref = change(state.pref ?? {});
      state.pref = pref;
      return r;
    });
    if (!updated || !pref) throw Errors.notRoomMember();
    const payload = { ...pref, room: roomId };
    this.bus.publish(userTopic(actor.app.id, userId), { kind: 'deliver', event: 'roomPref', payload });
    return payload;
  }
}

/** The request bodies this service validates (routes reference them for the protocol reference); a user pref's body is any JSON value. */
export const prefInputs = { pref: z.unknown(), roomPref: roomPrefSchema };
