import {
  closeClient,
  connectClient,
  createRedisClient,
  type RedisClient,
} from '../cluster/redis-client.js';
import { describeError, type Logger } from '../observability/logger.js';
import { type Bus, type BusListener, type BusMessage, CONTROL_TOPIC } from './bus.js';

export interface RedisBusOptions {
  /** Channel prefix: topic `t` travels on channel `<prefix>:bus:t`. */
  prefix?: string;
  /** SPUBLISH/SSUBSCRIBE (Redis 7 sharded pub/sub) instead of PUBLISH/SUBSCRIBE. */
  sharded?: boolean;
  log?: Logger;
}

/** Control events kept for re-publishing when Redis refused them (revocations must not get lost). */
const MAX_HELD_CONTROL = 10_000;
const SUBSCRIBE_BATCH = 500;
/** Longer than the reconnect backoff's cap (1 s), so other nodes are subscribed again too. */
const RELEASE_GRACE_MS = 1_500;

/**
 * The Bus port on Redis pub/sub: one channel per room, per user, and one control channel.
 *
 * - A node subscribes only to the topics the gateway asks for (first local socket) and
 *   unsubscribes when the last one leaves.
 * - `publish` never delivers locally: every node, the publisher included, receives each event
 *   through Redis exactly once. Publishes are auto-pipelined (one write per tick).
 * - The subscriber connection re-subscribes everything it holds whenever it (re)connects:
 *   after a Redis restart, and after Redis dropped it (e.g. output-buffer limit).
 * - Events published while Redis is away are dropped (clients find messages in history),
 *   except control events, which are held and re-published once Redis is back.
 */
export class RedisBus implements Bus {
  private topics = new Set<string>();
  private listeners: BusListener[] = [];
  private pending = new Set<Promise<unknown>>();
  private heldControl: string[] = [];
  private readonly channelPrefix: string;
  private readonly sharded: boolean;
  private closed = false;
  private releaseTimer: NodeJS.Timeout | undefined;

  constructor(
    private pub: RedisClient,
    private sub: RedisClient,
    private options: RedisBusOptions = {},
  ) {
    this.channelPrefix = `${options.prefix ?? 'rc'}:bus:`;
    this.sharded = options.sharded ?? false;
    sub.on(this.sharded ? 'smessage' : 'message', (channel: string, data: string) => this.receive(channel, data));
    sub.on('ready', () => {
      this.resubscribe();
      this.scheduleRelease();
    });
    pub.on('ready', () => this.scheduleRelease());
  }

  /** Two connections to `url` (publisher, subscriber), ready or throwing after `timeoutMs`. */
  static async open(url: string, options: RedisBusOptions & { name?: string; timeoutMs?: number } = {}): Promise<RedisBus> {
    const name = options.name ?? 'roomcast';
    const pub = createRedisClient(url, { name: `${name}:pub`, autoPipelining: true, log: options.log });
    const sub = createRedisClient(url, { name: `${name}:sub`, shardedSubscribers: options.sharded, log: options.log });
    const bus = new RedisBus(pub, sub, options);
    try {
      await Promise.all([connectClient(pub, url, options.timeoutMs ?? 10_000), connectClient(sub, url, options.timeoutMs ?? 10_000)]);
    } catch (err) {
      pub.disconnect();
      sub.disconnect();
      throw err;
    }
    return bus;
  }

  private channel(topic: string): string {
    return this.channelPrefix + topic;
  }

  publish(topic: string, message: BusMessage): void {
    const data = JSON.stringify(message);
    this.send(topic, data).catch((err: Error) => {
      if (topic === CONTROL_TOPIC && !this.closed) {
        if (this.heldControl.length >= MAX_HELD_CONTROL) this.heldControl.shift();
        this.heldControl.push(data);
        this.options.log?.warn({ err: err.message, kind: message.kind }, 'control event held until redis is back');
        if (this.ready()) this.scheduleRelease();
      } else {
        this.options.log?.debug({ err: err.message, topic }, 'event not published: redis unavailable');
      }
    });
  }

  private send(topic: string, data: string): Promise<unknown> {
    const channel = this.channel(topic);
    return this.sharded ? this.pub.spublish(channel, data) : this.pub.publish(channel, data);
  }

  /**
   * Held control events go out once both connections are back and re-subscribed, after a
   * grace period that lets the other nodes' subscribers (same reconnect backoff) return too.
   */
  private scheduleRelease(): void {
    if (this.heldControl.length === 0 || this.releaseTimer) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (this.closed || !this.ready()) return; // the next 'ready' schedules again
      void this.settled().then(() => this.releaseHeldControl());
    }, RELEASE_GRACE_MS);
    this.releaseTimer.unref();
  }

  private releaseHeldControl(): void {
    const held = this.heldControl.splice(0);
    for (const data of held) {
      this.send(CONTROL_TOPIC, data).catch(() => {
        if (this.heldControl.length < MAX_HELD_CONTROL) this.heldControl.push(data);
      });
    }
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (this.sub.status === 'ready') this.track(this.command('subscribe', [this.channel(topic)]));
    // Otherwise the next 'ready' subscribes everything in `topics`.
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    if (this.sub.status === 'ready') this.track(this.command('unsubscribe', [this.channel(topic)]));
  }

  /** Resolves once every (un)subscribe sent so far has been answered (or failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private command(kind: 'subscribe' | 'unsubscribe', channels: string[]): Promise<unknown> {
    if (this.sharded) return kind === 'subscribe' ? this.sub.ssubscribe(...channels) : this.sub.sunsubscribe(...channels);
    return kind === 'subscribe' ? this.sub.subscribe(...channels) : this.sub.unsubscribe(...channels);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: Error) => {
      // The connection went away mid-command; the next 'ready' re-subscribes.
      this.options.log?.debug({ err: err.message }, 'redis (un)subscribe failed');
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** (Re)connected: subscribe to everything this node needs. */
  private resubscribe(): void {
    const channels = [...this.topics].map((t) => this.channel(t));
    if (this.sharded) {
      // Sharded channels of one SSUBSCRIBE must share a slot: one command each (auto-pipelined).
      for (const channel of channels) this.track(this.command('subscribe', [channel]));
      return;
    }
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH) {
      this.track(this.command('subscribe', channels.slice(i, i + SUBSCRIBE_BATCH)));
    }
  }

  private receive(channel: string, data: string): void {
    if (!channel.startsWith(this.channelPrefix)) return;
    const topic = channel.slice(this.channelPrefix.length);
    if (!this.topics.has(topic)) return;
    let message: BusMessage;
    try {
      message = JSON.parse(data) as BusMessage;
    } catch {
      this.options.log?.warn({ topic }, 'ignored a bus event that is not JSON');
      return;
    }
    // Nothing delivered may throw out of the subscriber's callback (it would end the process).
    for (const listener of this.listeners) {
      try {
        listener(topic, message);
      } catch (err) {
        this.options.log?.error({ topic, err: describeError(err) }, 'a bus listener failed');
      }
    }
  }

  onMessage(listener: BusListener): void {
    this.listeners.push(listener);
  }

  ready(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.releaseTimer);
    this.listeners = [];
    await Promise.all([closeClient(this.sub), closeClient(this.pub)]);
  }
}
