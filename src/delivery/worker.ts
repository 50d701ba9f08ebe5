import { createHash } from 'node:crypto';
import type { Core } from '../core/core.js';
import type { DeliverySettings, DeviceRecord, OutboxItem, OutboxOutcome } from '../core/models.js';
import type { Logger } from '../observability/logger.js';
import { isHttpUrl, post } from './http.js';
import { backoffMs } from './outbox.js';
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
      claimed = await this.core.delivery.claim(free, this.leaseMs);
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
      await this.core.delivery.settle(item, outcome);
    } catch (err) {
      // The lease runs out and another worker retries it.
      this.log.warn({ item: item.id, err: describe(err) }, 'outbox: settle failed');
    }
  }

  /** Retry later, or dead-letter when this was the last attempt. */
  private failure(item: OutboxItem, error: string, payload?: Record<string, unknown>): OutboxOutcome {
    if (item.attempts >= this.options.maxAttempts) return { status: 'dead', error };
    const delay = backoffMs(item.attempts, this.options.retryBaseMs, this.options.retryMaxMs);
    return { status: 'pending', nextAt: this.core.delivery.now() + delay, error, ...(payload ? { payload } : {}) };
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
    if (!(await this.core.delivery.botMode(item.appId, roomId))) return { status: 'delivered' };
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

  /** A new message's push job: the core picks the recipients and enqueues their batches. */
  private async fanOut(item: OutboxItem, settings: DeliverySettings): Promise<OutboxOutcome> {
    await this.core.delivery.planPushBatches(item, settings, this.options.pushBatchSize, (d) => this.providerFor(settings, d) !== undefined);
    return { status: 'delivered' };
  }

  private providerFor(settings: DeliverySettings, device: DeviceRecord): PushProvider | undefined {
    return this.providers.find((p) => p.handles(settings, device));
  }

  /** One batch of recipients: the external endpoint once, then every device of theirs. */
  private async push(item: OutboxItem, settings: DeliverySettings): Promise<OutboxOutcome> {
    const payload = item.payload as unknown as PushPayload;
    // Sends start only in the first half of the lease, so no other node can hold the item meanwhile.
    const deadline = Date.now() + this.leaseMs / 2;
    const content = await this.core.delivery.pushContent(item.appId, payload);
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

    const devices = (await this.core.delivery.devices(item.appId, payload.recipients)).filter((d) => !done.has(deviceKey(d)) && this.providerFor(settings, d));
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
        await this.core.delivery.removeInvalidDevice(item.appId, device);
        this.log.info({ app: item.appId, user: device.userId, type: device.type }, 'push: removed a device the provider called invalid');
      }
      if (result.retry) pending = true;
      else done.add(deviceKey(device));
    });

    const summary = [...new Set(errors)].slice(0, 5).join('; ');
    if (pending) return this.failure(item, summary, { ...item.payload, done: [...done] });
    return summary ? { status: 'delivered', note: summary } : { status: 'delivered' };
  }

  /** The user's unread total, once per user per batch. */
  private async badge(appId: string, userId: string, cache: Map<string, number>): Promise<number> {
    let total = cache.get(userId);
    if (total === undefined) cache.set(userId, (total = await this.core.delivery.badge(appId, userId)));
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
