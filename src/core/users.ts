import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { CONTROL_TOPIC, roomTopic } from '../bus/bus.js';
import type { Store, UserFilter } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { AppRecord, UserRecord } from './models.js';
import { parseUserQuery } from './user-query.js';
import { asUser, authorize } from './permissions.js';
import type { IssuedToken, TokenService } from './tokens.js';
import { parseInput } from './validate.js';
import { DEFAULT_SERVICE_LIMITS, encodeForStore, isValidId, type ServiceLimits } from './limits.js';
import { requireUser } from './lookup.js';
import type { Presenter } from './presenter.js';
import { type ClientView, clientView, ownAccountFields, revokedTokenView } from './views.js';
import { sha256 } from './secrets.js';
import { type Clock, systemClock } from './clock.js';

/** New user ids follow the documented id set (README: Ids). */
const userId = z.string().trim().min(1).max(128).refine(isValidId, {
  message: 'use 1-128 of A-Z a-z 0-9 _ . @ : + = - (not a name Object.prototype owns, such as __proto__ or constructor)',
});
const profile = {
  nickname: z.string().max(256).optional(),
  avatarUrl: z.string().max(2048).optional(),
  description: z.string().max(4096).optional(),
};
/** Fields a client may not set as custom data (they are the server's). */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype', '_id', 'id', 'clientType', 'createdAt', 'updatedAt', 'updatedAtMS', 'token', 'issueAccessToken', 'expirationDate']);

const upsertSchema = z.looseObject({
  _id: userId,
  ...profile,
  issueAccessToken: z.boolean().optional(),
  token: z.string().min(8).max(4096).optional(),
  expirationDate: z.union([z.number(), z.string()]).optional(),
});
const updateMeSchema = z.looseObject(profile);
const tokenSchema = z.object({
  token: z.string().min(8).max(4096),
  expirationDate: z.union([z.number(), z.string()]),
});
const signSchema = z.looseObject({ id: userId, ...profile });
const upsertManySchema = z.looseObject({ data: z.array(z.looseObject({ _id: userId, ...profile })).min(1).max(1000) });
/** Users read per store call while filtering the user list. */
const revokeSchema = z.object({ token: z.string().min(1).max(4096).optional() }).optional();

/** The request bodies this service validates, by operation (routes reference them for the protocol reference). */
export const userInputs = { upsert: upsertSchema, updateMe: updateMeSchema, setToken: tokenSchema, revoke: revokeSchema, upsertMany: upsertManySchema, signIn: signSchema };

/** expirationDate as IMKIT sends it: epoch ms or an ISO date; must lie in the future. */
function parseExpiry(value: number | string, now: number): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw Errors.invalidInput('expirationDate: not a date (epoch ms or ISO 8601)');
  if (ms <= now) throw Errors.invalidInput('expirationDate: must be in the future');
  return ms;
}

function customFields(body: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!known.includes(k) && !RESERVED.has(k)) custom[k] = v;
  return custom;
}

/** IMKIT's `q` filter, and the dashboard's substring search (any case) on id or nickname. */
function userFilter(filter: { q?: string; search?: string }): UserFilter | undefined {
  const imkit = parseUserQuery(filter.q);
  const needle = filter.search?.toLowerCase();
  if (!needle) return imkit && { all: imkit };
  const text = { value: needle, at: 'anywhere' as const, foldCase: true };
  return { all: imkit ?? [], any: [{ field: 'id', text }, { field: 'nickname', text }] };
}

const tokenView = (t: IssuedToken) => ({
  token: t.token,
  expirationDate: new Date(t.expiresAt).toISOString(),
  expirationDateMS: t.expiresAt,
});

/** The push devices a logout removes (DeliveryService owns them). */
export interface DeviceRegistry {
  forgetDevices(appId: string, userId: string, which: { only: string | undefined } | { except: string | undefined }): Promise<number>;
}

/** Users (IMKIT "clients"), their profiles and their tokens. */
export class UserService {
  constructor(
    private store: Store,
    private bus: Bus,
    private tokens: TokenService,
    private present: Presenter,
    private devices: DeviceRegistry,
    private clock: Clock = systemClock,
    private limits: ServiceLimits = DEFAULT_SERVICE_LIMITS,
  ) {}

  /** Custom profile fields after a change, refused past the configured count. */
  /** The user with the profile fields that were sent (the rest, mute list and login times included, stays). */
  private withProfile(
    user: UserRecord,
    input: Record<string, unknown> & { nickname?: string; avatarUrl?: string; description?: string },
    now: number,
  ): UserRecord {
    return {
      ...user,
      nickname: input.nickname ?? user.nickname,
      avatarUrl: input.avatarUrl ?? user.avatarUrl,
      description: input.description ?? user.description,
      custom: this.mergeCustom(user.custom, input),
      updatedAt: now,
    };
  }

  private mergeCustom(existing: Record<string, unknown> | undefined, input: Record<string, unknown>): Record<string, unknown> {
    const custom = { ...existing, ...customFields(input, Object.keys(profile)) };
    if (Object.keys(custom).length > this.limits.maxCustomFields) {
      throw Errors.inputLimit('TOO_MANY_FIELDS', `A profile may hold at most ${this.limits.maxCustomFields} custom fields`);
    }
    encodeForStore(custom, this.limits.maxMessageBytes);
    return custom;
  }

  /** `POST /admin/clients`: idempotent create-or-update, optionally issuing or assigning a token. */
  async upsert(actor: Actor, body: unknown): Promise<ClientView> {
    authorize(actor, 'users.manage');
    const input = parseInput(upsertSchema, body);
    if (input.issueAccessToken && input.token) {
      throw Errors.invalidInput('send either issueAccessToken or token + expirationDate, not both');
    }
    if (input.token && input.expirationDate === undefined) {
      throw Errors.invalidInput('expirationDate: required with token');
    }
    const now = this.clock.now();
    const expiry = input.token ? parseExpiry(input.expirationDate!, now) : undefined;
    const custom = this.mergeCustom(undefined, input);
    // An update changes only what was sent: mute list, login times and the rest stay.
    const user = await this.store.upsertUser(
      actor.app.id,
      input._id,
      (u) => this.withProfile(u, input, now),
      () => ({ id: input._id, nickname: input.nickname, avatarUrl: input.avatarUrl, description: input.description, custom, createdAt: now, updatedAt: now }),
    );
    this.announceChanged(actor.app.id, user.id);
    const view = clientView(user, user.id);
    if (input.issueAccessToken) return { ...view, ...tokenView(await this.tokens.issue(actor.app, user.id)) };
    if (input.token) return { ...view, ...tokenView(await this.tokens.assign(actor.app, user.id, input.token, expiry!)) };
    return view;
  }

  /** `POST /admin/clients/list {data: [{_id, nickname, avatarUrl, …}]}`: upserts each (no tokens) → `{count}`. */
  async upsertMany(actor: Actor, body: unknown): Promise<{ count: number }> {
    authorize(actor, 'users.manage');
    const input = parseInput(upsertManySchema, body);
    const tokenFields = input.data.findIndex((u) => 'token' in u || 'issueAccessToken' in u);
    if (tokenFields >= 0) throw Errors.invalidInput(`data.${tokenFields}: the list upsert issues no tokens (use POST /admin/clients)`);
    for (const entry of input.data) await this.upsert(actor, entry);
    return { count: input.data.length };
  }

  /**
   * `GET /admin/clients`: users in creation order. `q` is IMKIT's filter (user-query.ts);
   * `search` (the dashboard's) keeps those whose id or nickname contains it, in any case.
   * The store filters, counts and pages in SQL.
   */
  async list(
    actor: Actor,
    skip: number,
    limit: number,
    filter: { q?: string; search?: string } = {},
  ): Promise<{ totalCount: number; data: ClientView[] }> {
    authorize(actor, 'users.manage');
    const { total, users } = await this.store.listUsers(actor.app.id, skip, limit, userFilter(filter));
    return { totalCount: total, data: await this.present.clientsWithStatus(actor.app.id, users.map((u) => u.id)) };
  }

  /**
   * `POST /auths/sign/v2 {id, nickname?, avatarUrl?}`: a token for a user, creating them if
   * needed. With the API key always; with the client key alone only when the operator enabled
   * the sandbox (the Flutter SDK signs in this way when it has no token).
   */
  async sandboxSignIn(app: AppRecord, body: unknown) {
    const input = parseInput(signSchema, body);
    const now = this.clock.now();
    // As upsert: an atomic update of what was sent (mute list and login times stay), else a new user.
    const user = await this.store.upsertUser(
      app.id,
      input.id,
      (u) => ({ ...u, nickname: input.nickname ?? u.nickname, avatarUrl: input.avatarUrl ?? u.avatarUrl, updatedAt: now }),
      () => ({ id: input.id, nickname: input.nickname, avatarUrl: input.avatarUrl, custom: {}, createdAt: now, updatedAt: now }),
    );
    this.announceChanged(app.id, user.id);
    const issued = await this.tokens.issue(app, user.id);
    return {
      authType: 'Standalone JWT',
      token: issued.token,
      expirationDate: new Date(issued.expiresAt).toISOString(),
      id: user.id,
      nickname: user.nickname ?? user.id,
      avatarUrl: user.avatarUrl ?? '',
      exp: Math.floor(issued.expiresAt / 1000),
    };
  }

  /** The user's tokens as records (when issued, when they expire); tokens themselves are never stored. */
  async tokenRecords(actor: Actor, id: string) {
    authorize(actor, 'tokens.manage');
    await requireUser(this.store, actor.app.id, id);
    const now = Date.now();
    const records = await this.store.listTokens(actor.app.id, id);
    return {
      totalCount: records.length,
      data: records.map((t) => ({
        issuedByServer: t.issued,
        createdAt: new Date(t.createdAt).toISOString(),
        createdAtMS: t.createdAt,
        expirationDate: new Date(t.expiresAt).toISOString(),
        expirationDateMS: t.expiresAt,
        expired: t.expiresAt <= now,
      })),
    };
  }

  async get(actor: Actor, id: string): Promise<ClientView> {
    authorize(actor, 'users.manage');
    await requireUser(this.store, actor.app.id, id);
    return (await this.present.clientsWithStatus(actor.app.id, [id]))[0]!;
  }

  /** Deletes the user and their tokens and takes them out of every room. */
  async remove(actor: Actor, id: string, leaveRooms: (roomId: string) => Promise<void>): Promise<void> {
    authorize(actor, 'users.manage');
    await requireUser(this.store, actor.app.id, id);
    await this.tokens.revoke(actor.app, id);
    for (const roomId of await this.store.userRoomIds(actor.app.id, id)) await leaveRooms(roomId);
    await this.store.deleteUser(actor.app.id, id);
    this.announceChanged(actor.app.id, id);
  }

  /** Other nodes drop their cached copies of the user (the store's view cache). */
  private announceChanged(appId: string, userId: string): void {
    this.bus.publish(CONTROL_TOPIC, { kind: 'users-changed', appId, userIds: [userId] });
  }

  async me(actor: Actor): Promise<ClientView> {
    const me = asUser(actor, 'me.read');
    const user = await requireUser(this.store, actor.app.id, me.userId);
    return { ...(await this.present.clientsWithStatus(actor.app.id, [me.userId]))[0]!, ...ownAccountFields(user) };
  }

  /**
   * `POST /me/logout` (client/Me-Logout.md): revokes the token the request was made with (its
   * sockets are cut) and the push device registered under `deviceId` (`IM-Device-ID`), if
   * any. Answers the revoked token; `token` echoes the one presented.
   */
  async logout(actor: Actor, presented: { token?: string; deviceId?: string }) {
    const me = asUser(actor, 'me.logout');
    const [gone] = await this.tokens.revokeHash(actor.app, me.userId, me.tokenHash);
    await this.devices.forgetDevices(actor.app.id, me.userId, { only: presented.deviceId });
    if (!gone) throw Errors.invalidToken();
    const echoed = presented.token !== undefined && sha256(presented.token) === me.tokenHash ? presented.token : undefined;
    return revokedTokenView(gone, echoed);
  }

  /**
   * `POST /me/logout-others` (client/Me-Logout-Others.md): revokes every other token of the
   * user (their sockets are cut) and every push device but the one registered under
   * `deviceId` (all of them when no device id is sent). Answers `{data: [revoked tokens]}`.
   */
  async logoutOthers(actor: Actor, presented: { deviceId?: string }) {
    const me = asUser(actor, 'me.logout');
    const gone = await this.tokens.revokeAllBut(actor.app, me.userId, me.tokenHash);
    await this.devices.forgetDevices(actor.app.id, me.userId, { except: presented.deviceId });
    return { data: gone.map((t) => revokedTokenView(t)) };
  }

  /**
   * `POST /me/notification/enable|disable` (client/Me-Enable-Notification.md): the user's
   * push switch, honoured by the push fan-out (DeliveryService). Answers the user as `GET /me`.
   */
  async setNotification(actor: Actor, enabled: boolean): Promise<ClientView> {
    const me = asUser(actor, 'me.notification');
    const now = this.clock.now();
    const updated = await this.store.updateUser(actor.app.id, me.userId, (u) => {
      const next: UserRecord = { ...u, updatedAt: now };
      if (enabled) delete next.notificationDisabled;
      else next.notificationDisabled = true;
      return next;
    });
    if (!updated) throw Errors.notFound('CLIENT', me.userId);
    // Other nodes' cached copies (read by the push fan-out) go at once.
    this.announceChanged(actor.app.id, me.userId);
    return { ...(await this.present.clientsWithStatus(actor.app.id, [me.userId]))[0]!, ...ownAccountFields(updated) };
  }

  /** `POST /me`: profile update, announced to the rooms the user is in. */
  async updateMe(actor: Actor, body: unknown): Promise<ClientView> {
    const me = asUser(actor, 'me.update');
    const input = parseInput(updateMeSchema, body);
    const now = this.clock.now();
    const updated = await this.store.updateUser(actor.app.id, me.userId, (user) => this.withProfile(user, input, now));
    if (!updated) throw Errors.notFound('CLIENT', me.userId);
    this.announceChanged(actor.app.id, updated.id);
    const view = clientView(updated, updated.id);
    for (const roomId of await this.store.userRoomIds(actor.app.id, me.userId)) {
      this.bus.publish(roomTopic(actor.app.id, roomId), { kind: 'deliver', event: 'client', payload: view });
    }
    return view;
  }

  async setToken(actor: Actor, id: string, body: unknown) {
    authorize(actor, 'tokens.manage');
    const input = parseInput(tokenSchema, body);
    const user = await requireUser(this.store, actor.app.id, id);
    const issued = await this.tokens.assign(actor.app, id, input.token, parseExpiry(input.expirationDate, this.clock.now()));
    // The old docs answer {token, client, expirationDate(MS)}; the new ones the client with its token: both.
    return { ...clientView(user, id), client: id, issueAccessToken: false, ...tokenView(issued), updatedAt: new Date(this.clock.now()).toISOString() };
  }

  async revokeTokens(actor: Actor, id: string, body: unknown) {
    authorize(actor, 'tokens.manage');
    const input = parseInput(revokeSchema, body);
    await requireUser(this.store, actor.app.id, id);
    const gone = await this.tokens.revoke(actor.app, id, input?.token);
    if (input?.token && gone.length === 0) throw Errors.tokenNotFound();
    // The new docs' {success, message, revokedTokens}, and the old docs' `data` list.
    return {
      success: true,
      message: input?.token ? 'Token revoked successfully' : 'All tokens revoked successfully',
      revokedTokens: gone.length,
      data: gone.map((t) => ({
        expirationDate: new Date(t.expiresAt).toISOString(),
        expirationDateMS: t.expiresAt,
        createdAt: new Date(t.createdAt).toISOString(),
      })),
    };
  }

  /** A socket of the user authenticated: their last login is now. */
  async recordLogin(appId: string, userId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.updateUser(appId, userId, (u) => ({ ...u, lastLoginAt: now, lastActiveAt: now }));
  }

  /** The user's last socket closed: they were last active now. */
  async recordActivity(appId: string, userId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.updateUser(appId, userId, (u) => ({ ...u, lastActiveAt: now }));
  }

}

export { userId as userIdSchema };
