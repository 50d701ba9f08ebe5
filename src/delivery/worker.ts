import { createHash } from 'node:crypto';
import type { Core } from '../core/core.js';
import type { DeliverySettings, DeviceRecord, OutboxItem, OutboxOutcome } from '../core/models.js';
import { isBanned } from '../core/permissions.js';
import type { Logger } from '../observability/logger.js';
import { isHttpUrl, post } from './http.js';
import type { Notification } from './notification.js';
import { backoffMs, newOutboxItem } from './outbox.js';
import { describe, type PushProvider } from './provider.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookSignature } from './signing.js';

export interface WorkerOptions {
  pollMs: number;
  batch: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  webhookTimeoutMs: number;
  pushTimeoutMs: number;
  pushBatchSize: number;
}

/** Device sends in flight per push item (APNs multiplexes them on one HTTP/2 session). */
const SEND_CONCURRENCY = 16;

interface PushPayload {
  roomId?: string;
  messageId?: string;
  custom?: Record<string, unknown>;
  recipients: string[];
  /** Device keys (and `external`) already done, so a retry sends only what failed. */
  done?: string[];
}

/**
 * Delivers the outbox. Every node runs one: it claims due items (atomically, with a lease, so
 * two nodes never hold the same item), calls the receiver, and settles each item as
 * delivered, to be retried (exponential backoff with jitter) or dead after the last attempt.
 * Nothing here runs on a request's path.
 */
export class OutboxWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Items being delivered; new claims fill the free slots, so one slow receiver holds one slot, not the batch. */
  private inflight = new Set<Promise<void>>();
  private stopped = false;
  /** Logged once per outage, not once per poll. */
  private claimFailing = false;
  private readonly leaseMs: number;

  constructor(
    private core: Core,
    private options: WorkerOptions,
    private providers: PushProvider[],
    private log: Logger,
  ) {
    // Long enough for the slowest call a handler makes, several times over.
    this.leaseMs = 4 * Math.max(options.webhookTimeoutMs, options.pushTimeoutMs) + 5_000;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops claiming and waits for the items in hand to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await Promise.all(this.inflight);
    for (const p of this.providers) p.close();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const free = this.options.batch - this.inflight.size;
    if (free <= 0) return this.schedule(this.options.pollMs);
    let claimed: OutboxItem[] = [];
    try {
      claimed = await this.core.store.claimOutbox(Date.now(), free, this.leaseMs);
      if (this.claimFailing) this.log.info('outbox: claiming again');
      this.claimFailing = false;
    } catch (err) {
      if (!this.claimFailing) this.log.warn({ err: describe(err) }, 'outbox: claim failed; retrying every poll');
      this.claimFailing = true;
    }
    for (const item of claimed) {
      const done: Promise<void> = this.process(item).finally(() => this.inflight.delete(done));
      this.inflight.add(done);
    }
    // Every free slot filled: there is probably more waiting.
    this.schedule(claimed.length === free ? 0 : this.options.pollMs);
  }

  private async process(item: OutboxItem): Promise<void> {
    let outcome: OutboxOutcome;
    try {
      outcome = await this.handle(item);
    } catch (err) {
      outcome = this.failure(item, describe(err));
    }
    if (outcome.status === 'dead') this.log.warn({ app: item.appId, item: item.id, kind: item.kind, error: outcome.error }, 'outbox: dead-lettered');
    try {
      await this.core.store.settleOutbox(item.appId, item.id, item.claim!, outcome, Date.now());
    } catch (err) {
      // The lease runs out and another worker retries it.
      this.log.warn({ item: item.id, err: describe(err) }, 'outbox: settle failed');
    }
  }

  /** Retry later, or dead-letter when this was the last attempt. */
  private failure(item: OutboxItem, error: string, payload?: Record<string, unknown>): OutboxOutcome {
    if (item.attempts >= this.options.maxAttempts) return { status: 'dead', error };
    const delay = backoffMs(item.attempts, this.options.retryBaseMs, this.options.retryMaxMs);
    return { status: 'pending', nextAt: Date.now() + delay, error, ...(payload ? { payload } : {}) };
  }

  private async handle(item: OutboxItem): Promise<OutboxOutcome> {
    const settings = await this.core.delivery.settingsOf(item.appId);
    if (!settings) return { status: 'dead', error: 'the application has no delivery settings' };
    switch (item.kind) {
      case 'webhook':
        return this.webhook(item, settings);
      case 'push-fanout':
        return this.fanOut(item, settings);
      case 'push':
        return this.push(item, settings);
    }
  }

  // ---- webhooks ---------------------------------------------------------------------------

  private async webhook(item: OutboxItem, settings: DeliverySettings): Promise<OutboxOutcome> {
    const target = String(item.payload.target);
    const url = isHttpUrl(target) ? target : settings.webhooks?.[target];
    if (!url) return { status: 'dead', error: `unknown webhook key '${target.slice(0, 128)}'` };
    const body = JSON.stringify(item.payload.body);
    let reply;
    try {
      reply = await post(url, body, signedHeaders(settings, item, body), this.options.webhookTimeoutMs);
    } catch (err) {
      return this.failure(item, `webhook: ${describe(err)}`);
    }
    if (reply.status >= 200 && reply.status < 300) return this.applyReply(item, reply.text);
    const error = `webhook answered HTTP ${reply.status}`;
    // Refusals other than "later" are not retried: the same request would be refused again.
    if (reply.status === 408 || reply.status === 429 || reply.status >= 500) return this.failure(item, error);
    return { status: 'dead', error };
  }

  /** IMKIT's webhook reply {senderID, toBotState, data}: acted on in bot-mode rooms. */
  private async applyReply(item: OutboxItem, text: string): Promise<OutboxOutcome> {
    let reply: unknown;
    try {
      reply = text.trim() ? JSON.parse(text) : undefined;
    } catch {
      return { status: 'delivered' };
    }
    if (typeof reply !== 'object' || reply === null) return { status: 'delivered' };
    const { senderID, toBotState, data } = reply as { senderID?: unknown; toBotState?: unknown; data?: unknown };
    const roomId = String(item.payload.roomId);
    const room = await this.core.store.getRoom(item.appId, roomId);
    if (!room?.botMode) return { status: 'delivered' };
    try {
      if (typeof toBotState === 'string' && toBotState !== '') await this.core.rooms.moveBotState(item.appId, roomId, toBotState);
      if (typeof data === 'object' && data !== null) {
        const sender = typeof senderID === 'string' && senderID !== '' ? senderID : undefined;
        await this.core.messages.postBotReply(item.appId, roomId, sender, data, replyId(item.id));
      }
    } catch (err) {
      return { status: 'delivered', note: `reply not applied: ${describe(err)}` };
    }
    return { status: 'delivered' };
  }

  // ---- push -------------------------------------------------------------------------------

  /**
   * A new message's push job: the members to notify (not the sender, not banned, no live
   * socket anywhere in the cluster, room not muted, sender not blocked), in batches of `pushBatchSize`, each an
   * outbox item of its own (ids derived from this one, so a retry enqueues nothing twice).
   */
  private async fanOut(item: OutboxItem, settings: DeliverySettings): Promise<OutboxOutcome> {
    const { roomId, messageId, sender } = item.payload as { roomId: string; messageId: string; sender?: string };
    const room = await this.core.store.getRoom(item.appId, roomId);
    if (!room) return { status: 'delivered', note: 'room gone' };
    const candidates = room.members.filter((m) => m !== sender && !isBanned(m, room));
    const size = this.options.pushBatchSize;
    const batches: OutboxItem[] = [];
    for (let i = 0, k = 0; i < candidates.length; i += size, k++) {
      const recipients = await this.offlineUnmuted(item.appId, roomId, sender, candidates.slice(i, i + size), settings);
      if (recipients.length > 0) batches.push(newOutboxItem(item.appId, 'push', { roomId, messageId, recipients }, `${item.id}-${k}`));
    }
    for (let i = 0; i < batches.length; i += 100) await this.core.store.enqueueOutbox(item.appId, batches.slice(i, i + 100));
    return { status: 'delivered' };
  }

  private async offlineUnmuted(appId: string, roomId: string, sender: string | undefined, userIds: string[], settings: DeliverySettings): Promise<string[]> {
    const store = this.core.store;
    const [online, users, blocked] = await Promise.all([
      Promise.all(userIds.map((u) => this.core.presence.isUserConnected(appId, u))),
      store.getUsers(appId, userIds),
      // Who blocked the sender hears nothing from them (as live and in history).
      sender ? Promise.all(userIds.map(async (u) => (await store.getBlock(appId, u, sender)) !== undefined)) : userIds.map(() => false),
    ]);
    const wanted = userIds.filter((u, i) => !online[i] && !blocked[i] && !users[i]?.mute?.includes(roomId));
    if (settings.externalPush || wanted.length === 0) return wanted;
    // Only the built-in providers: users without a device they can reach get no item.
    const reachable = new Set((await this.core.store.listDevices(appId, wanted)).filter((d) => this.providerFor(settings, d)).map((d) => d.userId));
    return wanted.filter((u) => reachable.has(u));
  }

  private providerFor(settings: DeliverySettings, device: DeviceRecord): PushProvider | undefined {
    return this.providers.find((p) => p.handles(settings, device));
  }

  /** One batch of recipients: the external endpoint once, then every device of theirs. */
  private async push(item: OutboxItem, settings: DeliverySettings): Promise<OutboxOutcome> {
    const payload = item.payload as unknown as PushPayload;
    // Sends start only in the first half of the lease, so no other node can hold the item meanwhile.
    const deadline = Date.now() + this.leaseMs / 2;
    const content = await this.content(item.appId, payload);
    if (!content) return { status: 'delivered', note: 'message gone' };
    const done = new Set(payload.done ?? []);
    const errors: string[] = [];
    let pending = false;

    if (settings.externalPush && !done.has('external')) {
      const body = JSON.stringify({ ...content.external, pushToClients: payload.recipients });
      try {
        const reply = await post(settings.externalPush.url, body, signedHeaders(settings, item, body), this.options.pushTimeoutMs);
        if (reply.status >= 200 && reply.status < 300) done.add('external');
        else {
          errors.push(`external push answered HTTP ${reply.status}`);
          if (reply.status === 408 || reply.status === 429 || reply.status >= 500) pending = true;
          else done.add('external');
        }
      } catch (err) {
        errors.push(`external push: ${describe(err)}`);
        pending = true;
      }
    }

    const devices = (await this.core.store.listDevices(item.appId, payload.recipients)).filter((d) => !done.has(deviceKey(d)) && this.providerFor(settings, d));
    const badges = new Map<string, number>();
    await pool(devices, SEND_CONCURRENCY, async (device) => {
      if (Date.now() > deadline) {
        pending = true;
        errors.push('more devices than one claim may take: the rest follow in the next attempt');
        return;
      }
      const badge = content.custom ? content.notification.badge : await this.badge(item.appId, device.userId, badges);
      const result = await this.providerFor(settings, device)!.send(settings, device, { ...content.notification, badge });
      if (result.ok) return void done.add(deviceKey(device));
      errors.push(result.error);
      if (result.invalidToken) {
        await this.core.store.deleteDevice(item.appId, device.userId, device.type, device.deviceId, device.token);
        this.log.info({ app: item.appId, user: device.userId, type: device.type }, 'push: removed a device the provider called invalid');
      }
      if (result.retry) pending = true;
      else done.add(deviceKey(device));
    });

    const summary = [...new Set(errors)].slice(0, 5).join('; ');
    if (pending) return this.failure(item, summary, { ...item.payload, done: [...done] });
    return summary ? { status: 'delivered', note: summary } : { status: 'delivered' };
  }

  /** What the batch says: a message (IMKIT's localisation keys) or a custom push2clients payload. */
  private async content(appId: string, p: PushPayload): Promise<{ notification: Notification; external: Record<string, unknown>; custom: boolean } | undefined> {
    if (p.custom) {
      const c = p.custom as Notification & Record<string, unknown>;
      return { notification: { ...c }, external: { ...c }, custom: true };
    }
    const message = await this.core.store.getMessage(appId, p.messageId!);
    if (!message) return undefined;
    const [view, room] = await Promise.all([this.core.present.message(appId, message), this.core.store.getRoom(appId, p.roomId!)]);
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

  /** The user's unread total across their rooms (IMKIT's badge), once per user per batch. */
  private async badge(appId: string, userId: string, cache: Map<string, number>): Promise<number> {
    const known = cache.get(userId);
    if (known !== undefined) return known;
    const store = this.core.store;
    const rooms = await store.getRooms(appId, await store.userRoomIds(appId, userId));
    let total = 0;
    for (const r of rooms) if (r) total += await store.countMessagesAfter(appId, r.id, r.memberState[userId]?.lastRead);
    cache.set(userId, total);
    return total;
  }
}

const deviceKey = (d: DeviceRecord) => `${d.userId}/${d.type}:${d.deviceId}`;

/** The bot reply's message id: fixed per delivery, so a repeated delivery posts it once. */
const replyId = (itemId: string) => createHash('sha256').update(`reply:${itemId}`).digest('hex').slice(0, 24);

function signedHeaders(settings: DeliverySettings, item: OutboxItem, body: string): Record<string, string> {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': 'roomcast',
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: webhookSignature(settings.webhookSecret, timestamp, body),
    [DELIVERY_HEADER]: item.id,
  };
}

async function pool<T>(items: T[], concurrency: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await run(items[next++]!);
  });
  await Promise.all(lanes);
}
