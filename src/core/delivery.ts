import { createHash } from 'node:crypto';
import { ownValue } from './own.js';
import { importPKCS8 } from 'jose';
import { z } from 'zod';
import { type Bus, CONTROL_TOPIC } from '../bus/bus.js';
import { isHttpUrl } from '../delivery/http.js';
import type { Notification } from '../delivery/notification.js';
import { newOutboxItem } from '../delivery/outbox.js';
import type { Presence } from '../presence/presence.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import { type Clock, systemClock } from './clock.js';
import type { AppRecord, DeliverySettings, DeviceRecord, DeviceType, MessageRecord, OutboxItem, OutboxOutcome, RoomRecord, UserRecord } from './models.js';
import { authorize, isBanned } from './permissions.js';
import type { Presenter } from './presenter.js';
import { randomBase64Url } from './secrets.js';
import { parseInput } from './validate.js';
import type { ClientView, MessageView } from './views.js';

const id = z.string().trim().min(1).max(128);
const url = z.string().trim().max(2048).refine(isHttpUrl, 'expected an http(s) URL');
const DEVICE_TYPES = ['ios', 'android', 'fcm', 'web', 'ios-voip'] as const;

// Shapes as IMKIT's SDKs send them: Flutter im_user_request.dart `subscribe`/`unsubscribe`,
// Vue SDK `_T.Subscribe` ({type, token, deviceId}); `clientId` with the API key (api-doc Me-Subscribe.md).
export const subscribeSchema = z.looseObject({
  type: z.enum(DEVICE_TYPES),
  token: z.string().trim().min(1).max(4096),
  deviceId: z.string().trim().min(1).max(256).optional(),
  clientId: id.optional(),
});
export const unsubscribeSchema = z.looseObject({
  type: z.enum(DEVICE_TYPES),
  deviceId: z.string().trim().min(1).max(256).optional(),
  clientId: id.optional(),
});
// api-doc push/push-to-clients.md: {clients[], payload{type, alert, badge, sound, topic, expiry, title, body, icon, collapseKey}}
export const push2clientsSchema = z.looseObject({
  clients: z.array(id).min(1).max(10_000),
  payload: z.looseObject({
    type: z.string().max(256).optional(),
    alert: z.union([z.string().max(4096), z.looseObject({ 'loc-key': z.string().max(256).optional(), 'loc-args': z.array(z.string().max(1024)).max(20).optional() })]).optional(),
    badge: z.coerce.number().int().min(0).max(1_000_000).optional(),
    sound: z.string().max(256).optional(),
    topic: z.string().max(256).optional(),
    expiry: z.coerce.number().int().min(0).optional(),
    title: z.string().max(1024).optional(),
    body: z.string().max(4096).optional(),
    icon: z.string().max(2048).optional(),
    collapseKey: z.string().max(256).optional(),
  }),
});
const pem = z.string().max(16_384).refine((v) => v.includes('PRIVATE KEY'), 'expected a PEM private key');
export const settingsSchema = z.strictObject({
  webhook: url.nullable().optional(),
  webhooks: z.record(z.string().min(1).max(128), url).nullable().optional(),
  externalPush: z.strictObject({ url }).nullable().optional(),
  /** The service account key file as Google gives it. */
  fcm: z
    .looseObject({ project_id: z.string().min(1).max(256), client_email: z.string().min(3).max(512), private_key: pem, private_key_id: z.string().max(256).optional(), token_uri: url.optional() })
    .nullable()
    .optional(),
  apns: z
    .strictObject({ keyId: z.string().min(1).max(64), teamId: z.string().min(1).max(64), privateKey: pem, topic: z.string().min(1).max(256), sandbox: z.boolean().optional() })
    .nullable()
    .optional(),
  rotateWebhookSecret: z.literal(true).optional(),
});

/** The request bodies, for the route table's documentation (GET /openapi.json). */
export const deliveryInputs = { subscribe: subscribeSchema, unsubscribe: unsubscribeSchema, push2clients: push2clientsSchema, settings: settingsSchema };

/** How long a node trusts its copy of an application's delivery settings (changes elsewhere show up after this). */
const SETTINGS_TTL_MS = 1000;

export type MembershipEvent = 'JOIN_ROOM' | 'ADD_MEMBERS' | 'DELETE_MEMBERS';

/** A push batch's content: the notification, the external push body, and whether it is push2clients'. */
export interface PushContent {
  notification: Notification;
  external: Record<string, unknown>;
  custom: boolean;
}

/**
 * Offline delivery, the core side: push devices, application delivery settings, and the
 * outbox items each cause produces (a room webhook call, a push fan-out job). The items are
 * written by the store together with their cause; src/delivery/worker.ts delivers them.
 */
export class DeliveryService {
  private cache = new Map<string, { at: number; settings: DeliverySettings | undefined }>();

  constructor(
    private store: Store,
    private bus: Bus,
    private present: Presenter,
    private presence: Presence,
    private clock: Clock = systemClock,
  ) {}

  /** The application's settings, cached for a second (they are read on the send path). */
  async settingsOf(appId: string): Promise<DeliverySettings | undefined> {
    const hit = this.cache.get(appId);
    if (hit && this.clock.now() - hit.at < SETTINGS_TTL_MS) return hit.settings;
    const settings = (await this.store.getApp(appId))?.delivery;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(appId, { at: this.clock.now(), settings });
    return settings;
  }

  // ---- devices ----------------------------------------------------------------------------

  /** `POST /me/subscribe`: registers (or re-registers) a device token. */
  async subscribe(actor: Actor, body: unknown): Promise<Record<string, never>> {
    authorize(actor, 'push.subscribe');
    const input = parseInput(subscribeSchema, body);
    const userId = await this.deviceOwner(actor, input.clientId);
    // Old clients send no deviceId (api-doc Me-Subscribe.md example): the token names the device.
    const deviceId = input.deviceId ?? createHash('sha256').update(input.token).digest('hex').slice(0, 32);
    await this.store.putDevice(actor.app.id, { userId, type: input.type, deviceId, token: input.token, createdAt: this.clock.now() });
    return {};
  }

  /** `POST /me/unsubscribe`: the device (or, without deviceId, every device of that type). */
  async unsubscribe(actor: Actor, body: unknown): Promise<{ n: number; ok: 1 }> {
    authorize(actor, 'push.subscribe');
    const input = parseInput(unsubscribeSchema, body);
    const userId = await this.deviceOwner(actor, input.clientId);
    const targets = input.deviceId !== undefined ? [input.deviceId] : (await this.store.listDevices(actor.app.id, [userId])).filter((d) => d.type === input.type).map((d) => d.deviceId);
    let n = 0;
    for (const deviceId of targets) if (await this.store.deleteDevice(actor.app.id, userId, input.type, deviceId)) n++;
    return { n, ok: 1 };
  }

  /**
   * Logging out (`/me/logout`, `/me/logout-others`): removes the user's devices registered
   * under `deviceId` (`only`), or every other one (`except`; all of them without a device id).
   * Returns how many went.
   */
  async forgetDevices(appId: string, userId: string, which: { only: string | undefined } | { except: string | undefined }): Promise<number> {
    const devices = await this.store.listDevices(appId, [userId]);
    const targets = 'only' in which
      ? devices.filter((d) => which.only !== undefined && d.deviceId === which.only)
      : devices.filter((d) => d.deviceId !== which.except);
    let n = 0;
    for (const d of targets) if (await this.store.deleteDevice(appId, userId, d.type, d.deviceId)) n++;
    return n;
  }

  private async deviceOwner(actor: Actor, clientId: string | undefined): Promise<string> {
    if (actor.kind === 'user') return actor.userId;
    if (clientId === undefined) throw Errors.invalidInput('clientId: required with the API key');
    if (!(await this.store.getUser(actor.app.id, clientId))) throw Errors.notFound('CLIENT', clientId);
    return clientId;
  }

  /** Devices of these users (for the worker). */
  devices(appId: string, userIds: readonly string[]): Promise<DeviceRecord[]> {
    return this.store.listDevices(appId, userIds);
  }

  // ---- settings ---------------------------------------------------------------------------

  /** `GET /admin/delivery`: the settings without private keys; the webhook secret is shown (receivers need it). */
  async getSettings(actor: Actor) {
    authorize(actor, 'app.settings');
    return publicSettings(await this.ensureSecret(actor.app.id));
  }

  /** `PUT /admin/delivery`: changes what is given; `null` removes a setting. */
  async updateSettings(actor: Actor, body: unknown) {
    authorize(actor, 'app.settings');
    const input = parseInput(settingsSchema, body);
    if (input.fcm) await checkKey(input.fcm.private_key, 'RS256', 'fcm.private_key');
    if (input.apns) await checkKey(input.apns.privateKey, 'ES256', 'apns.privateKey');
    // Compare-and-set on the application record: a concurrent change elsewhere is not lost.
    const app = await this.saveSettings(actor.app.id, (current) => {
      const next: DeliverySettings = { ...(current ?? { webhookSecret: randomBase64Url(32) }) };
      if (input.rotateWebhookSecret) next.webhookSecret = randomBase64Url(32);
      assign(next, 'webhook', input.webhook);
      assign(next, 'webhooks', input.webhooks);
      assign(next, 'externalPush', input.externalPush);
      assign(next, 'apns', input.apns);
      if (input.fcm !== undefined) {
        next.fcm = input.fcm === null ? undefined : {
          projectId: input.fcm.project_id,
          clientEmail: input.fcm.client_email,
          privateKey: input.fcm.private_key,
          privateKeyId: input.fcm.private_key_id,
          tokenUri: input.fcm.token_uri,
        };
      }
      return next;
    });
    return publicSettings(app.delivery!);
  }

  private async ensureSecret(appId: string): Promise<DeliverySettings> {
    const cached = await this.settingsOf(appId);
    if (cached) return cached;
    const app = await this.saveSettings(appId, (current) => current ?? { webhookSecret: randomBase64Url(32) });
    return app.delivery!;
  }

  /**
   * Changes the application's delivery settings atomically (`Store.updateApp`). Other nodes
   * drop cached application records on `apps-changed`; this one's settings cache now.
   */
  private async saveSettings(appId: string, change: (current: DeliverySettings | undefined) => DeliverySettings): Promise<AppRecord> {
    const app = await this.store.updateApp(appId, (a) => ({ ...a, delivery: change(a.delivery) }));
    if (!app) throw Errors.notFound('APP', appId);
    this.cache.delete(appId);
    this.bus.publish(CONTROL_TOPIC, { kind: 'apps-changed' });
    return app;
  }

  /** `GET /admin/deliveries`: recent outbox items, newest first, without their payloads. */
  async deliveries(actor: Actor, limit: number) {
    authorize(actor, 'deliveries.read');
    const items = await this.store.listOutbox(actor.app.id, limit);
    return { data: items.map(deliveryView) };
  }

  // ---- pushes -----------------------------------------------------------------------------

  /** `POST /push/push2clients`: a custom notification to users (online or not), batched through the outbox. */
  async push2clients(actor: Actor, body: unknown, batchSize: number): Promise<Record<string, never>> {
    authorize(actor, 'push.send');
    const input = parseInput(push2clientsSchema, body);
    const clients = [...new Set(input.clients)];
    const items: OutboxItem[] = [];
    for (let i = 0; i < clients.length; i += batchSize) {
      items.push(newOutboxItem(actor.app.id, 'push', { custom: input.payload, recipients: clients.slice(i, i + batchSize) }, undefined, this.clock.now()));
    }
    await this.store.enqueueOutbox(actor.app.id, items);
    return {};
  }

  // ---- for the outbox worker (src/delivery/worker.ts) -----------------------------------------

  /** Due items of any application, claimed for `leaseMs` (see `Store.claimOutbox`). */
  claim(limit: number, leaseMs: number): Promise<OutboxItem[]> {
    return this.store.claimOutbox(this.clock.now(), limit, leaseMs);
  }

  /** Ends the item's claim; false when it was reclaimed meanwhile. */
  settle(item: OutboxItem, outcome: OutboxOutcome): Promise<boolean> {
    return this.store.settleOutbox(item.appId, item.id, item.claim!, outcome, this.clock.now());
  }

  /** Backoff delays are counted from now on the core's clock. */
  now(): number {
    return this.clock.now();
  }

  /**
   * A new message's push job: the members to notify (not the sender, not banned, no live
   * socket anywhere in the cluster, room not muted, notifications not disabled with
   * `/me/notification/disable`, sender not blocked), in batches of
   * `batchSize`, each an outbox item of its own (ids derived from the job's, so a retry
   * enqueues nothing twice). `reachable` says whether a device can be sent to (a provider is
   * configured for it); without an external push endpoint, users with no such device are left out.
   */
  async planPushBatches(job: OutboxItem, settings: DeliverySettings, batchSize: number, reachable: (device: DeviceRecord) => boolean): Promise<number> {
    const { roomId, messageId, sender } = job.payload as { roomId: string; messageId: string; sender?: string };
    const room = await this.store.getRoom(job.appId, roomId);
    if (!room) return 0;
    const candidates = room.members.filter((m) => m !== sender && !isBanned(m, room));
    const batches: OutboxItem[] = [];
    for (let i = 0, k = 0; i < candidates.length; i += batchSize, k++) {
      let recipients = await this.offlineUnmuted(job.appId, roomId, sender, candidates.slice(i, i + batchSize));
      if (!settings.externalPush && recipients.length > 0) {
        const withDevice = new Set((await this.store.listDevices(job.appId, recipients)).filter(reachable).map((d) => d.userId));
        recipients = recipients.filter((u) => withDevice.has(u));
      }
      if (recipients.length > 0) batches.push(newOutboxItem(job.appId, 'push', { roomId, messageId, recipients }, `${job.id}-${k}`, this.clock.now()));
    }
    for (let i = 0; i < batches.length; i += 100) await this.store.enqueueOutbox(job.appId, batches.slice(i, i + 100));
    return batches.length;
  }

  private async offlineUnmuted(appId: string, roomId: string, sender: string | undefined, userIds: string[]): Promise<string[]> {
    const [online, users, blocked] = await Promise.all([
      this.presence.usersConnected(appId, userIds),
      this.store.getUsers(appId, userIds),
      // Who blocked the sender hears nothing from them (as live and in history).
      sender ? this.store.blockersAmong(appId, sender, userIds) : new Set<string>(),
    ]);
    return userIds.filter((u, i) => !online[i] && !blocked.has(u) && wantsPush(users[i], roomId));
  }

  /**
   * What a push batch says: a message with IMKIT's localisation keys (`loc-key`
   * `im_loc_<messageType>`, `loc-args` [sender nickname, text]), or the custom payload of
   * push2clients; and the body of IMKIT's generic external push. Undefined when the message is gone.
   */
  async pushContent(appId: string, p: { roomId?: string; messageId?: string; custom?: Record<string, unknown> }): Promise<PushContent | undefined> {
    if (p.custom) return { notification: { ...(p.custom as Notification) }, external: { ...p.custom }, custom: true };
    const message = await this.store.getMessage(appId, p.messageId!);
    if (!message) return undefined;
    const [view, room] = await Promise.all([this.present.message(appId, message), this.store.getRoom(appId, p.roomId!)]);
    const sender = view.sender as { nickname?: string } | null;
    const senderName = sender?.nickname ?? '';
    const text = typeof message.message === 'string' ? message.message : '';
    const notification: Notification = {
      alert: { 'loc-key': `im_loc_${message.messageType}`, 'loc-args': [senderName, text] },
      title: room?.name || senderName,
      body: senderName && text ? `${senderName}: ${text}` : text || senderName,
      room: message.room,
      messageID: message.id,
      payload: view,
      roomTags: room?.roomTags,
    };
    // IMKIT's generic external push: the message flattened, plus roomName and pushToClients.
    return { notification, external: { ...view, roomName: room?.name ?? '' }, custom: false };
  }

  /** The user's unread total across their rooms: IMKIT's badge. */
  async badge(appId: string, userId: string): Promise<number> {
    const rooms = await this.store.getRooms(appId, await this.store.userRoomIds(appId, userId));
    let total = 0;
    for (const r of rooms) if (r) total += await this.store.countMessagesAfter(appId, r.id, ownValue(r.memberState, userId)?.lastRead);
    return total;
  }

  /** A device whose token the provider called invalid; kept if it re-subscribed with another token meanwhile. */
  removeInvalidDevice(appId: string, device: DeviceRecord): Promise<boolean> {
    return this.store.deleteDevice(appId, device.userId, device.type, device.deviceId, device.token);
  }

  /** Whether the room is in bot mode (its webhook's replies take effect). */
  async botMode(appId: string, roomId: string): Promise<boolean> {
    return (await this.store.getRoom(appId, roomId))?.botMode === true;
  }

  // ---- outbox items of each cause -----------------------------------------------------------

  /**
   * What a new message sends: the room webhook's MESSAGE event (unless `webhook` is false, as
   * for the webhook's own replies) and a push fan-out job (unless `push` is false).
   */
  async forMessage(appId: string, room: Pick<RoomRecord, 'id' | 'webhook' | 'botState'>, message: MessageRecord, view: MessageView, options: { push: boolean; webhook: boolean }): Promise<OutboxItem[]> {
    const settings = await this.settingsOf(appId);
    if (!settings) return [];
    const items: OutboxItem[] = [];
    const target = room.webhook ?? settings.webhook;
    if (options.webhook && target) {
      items.push(webhookItem(appId, room, target, 'MESSAGE', message.sender, view, this.clock.now()));
    }
    if (options.push && hasPush(settings)) {
      items.push(newOutboxItem(appId, 'push-fanout', { roomId: room.id, messageId: message.id, ...(message.sender ? { sender: message.sender } : {}) }, undefined, this.clock.now()));
    }
    return items;
  }

  /**
   * The webhook event of a membership change, built from the room as the change commits it
   * (pass the result to `Store.updateRoom`); undefined when the room has no webhook.
   */
  async forMembership(appId: string, room: RoomRecord, event: MembershipEvent, actorId: string | undefined, memberIds: readonly string[]) {
    const settings = await this.settingsOf(appId);
    if (!settings || !(room.webhook ?? settings.webhook) || memberIds.length === 0) return undefined;
    const [sender] = actorId ? await this.present.clients(appId, [actorId]) : [null];
    const members = await this.present.clients(appId, memberIds);
    return (_before: RoomRecord, after: RoomRecord): OutboxItem[] => {
      const target = after.webhook ?? settings.webhook;
      return target ? [webhookItem(appId, after, target, event, actorId, { room: after.id, sender, members }, this.clock.now())] : [];
    };
  }
}

/** IMKIT's webhook request body (api-doc webhook/webhook.md): {appID, clientID, roomID, event, botState, data}. */
function webhookItem(appId: string, room: Pick<RoomRecord, 'id' | 'botState'>, target: string, event: string, clientId: string | undefined, data: MessageView | { room: string; sender: ClientView | null | undefined; members: ClientView[] }, now: number): OutboxItem {
  const body = { appID: appId, clientID: clientId ?? null, roomID: room.id, event, botState: room.botState ?? null, data };
  return newOutboxItem(appId, 'webhook', { target, roomId: room.id, event, body }, undefined, now);
}

/** The user's own switches: notifications on (`/me/notification/*`) and the room not muted. */
const wantsPush = (user: UserRecord | undefined, roomId: string) => user?.notificationDisabled !== true && !user?.mute?.includes(roomId);

const hasPush = (s: DeliverySettings) => s.externalPush !== undefined || s.fcm !== undefined || s.apns !== undefined;

function assign<K extends keyof DeliverySettings>(target: DeliverySettings, key: K, value: DeliverySettings[K] | null | undefined): void {
  if (value === undefined) return;
  if (value === null) delete target[key];
  else target[key] = value;
}

async function checkKey(key: string, alg: 'RS256' | 'ES256', field: string): Promise<void> {
  try {
    await importPKCS8(key, alg);
  } catch {
    throw Errors.invalidInput(`${field}: not a PKCS#8 ${alg === 'RS256' ? 'RSA' : 'P-256'} private key`);
  }
}

function publicSettings(s: DeliverySettings) {
  return {
    webhookSecret: s.webhookSecret,
    webhook: s.webhook ?? null,
    webhooks: s.webhooks ?? {},
    externalPush: s.externalPush ?? null,
    fcm: s.fcm ? { projectId: s.fcm.projectId, clientEmail: s.fcm.clientEmail, privateKeyId: s.fcm.privateKeyId ?? null, tokenUri: s.fcm.tokenUri ?? null } : null,
    apns: s.apns ? { keyId: s.apns.keyId, teamId: s.apns.teamId, topic: s.apns.topic, sandbox: s.apns.sandbox ?? false } : null,
  };
}

function deliveryView(item: OutboxItem) {
  const p = item.payload;
  const detail =
    item.kind === 'webhook' ? { event: p.event, roomId: p.roomId }
    : item.kind === 'push-fanout' ? { roomId: p.roomId, messageId: p.messageId }
    : { roomId: p.roomId, messageId: p.messageId, custom: p.custom !== undefined, recipients: Array.isArray(p.recipients) ? p.recipients.length : 0 };
  return {
    id: item.id,
    kind: item.kind,
    status: item.status,
    attempts: item.attempts,
    lastError: item.lastError ?? null,
    ...detail,
    createdAtMS: item.createdAt,
    updatedAtMS: item.updatedAt,
    nextAtMS: item.status === 'pending' ? item.nextAt : null,
  };
}

export type { DeviceType };
