import type { Logger } from '../observability/logger.js';
import { closeClient, connectClient, createRedisClient, guarded, LuaScript, type RedisClient } from './redis-client.js';

import { LocalCounts, type Presence, appField, userField } from '../presence/presence.js';

/*
 * Redis layout (one slot, tag {p}):
 *   P:presence:{p}:nodes        zset  nodeId → expiry (ms, Redis server clock)
 *   P:presence:{p}:node:<id>    hash  field → this node's count (its contribution to totals)
 *   P:presence:{p}:totals       hash  field → cluster-wide count (sum over live nodes)
 * Fields: `a:<app>` per application, `u:<len(app)>:<app>:<user>` per user.
 *
 * Each sync (a debounced flush after changes, and a heartbeat every ttl/5) runs one script
 * that first reaps nodes whose expiry passed (subtracting their contribution from totals),
 * then applies this node's deltas to its hash and to totals, and pushes its expiry forward.
 * Reads are one HGET on totals: O(1), no node is asked. A crashed node stops heart-beating and
 * its sockets drop out of the totals within ttl + one heartbeat. A node that finds itself
 * reaped (it stalled, or Redis lost its data) sends a full snapshot instead of deltas.
 */
const SUBTRACT = `
local function subtract(totals, key)
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if redis.call('HINCRBY', totals, fields[i], -tonumber(fields[i + 1])) <= 0 then
      redis.call('HDEL', totals, fields[i])
    end
  end
  redis.call('DEL', key)
end
`;

// KEYS: nodes, totals   ARGV: base, nodeId, ttlMs, snapshot ('1'|'0'), (field, delta)…
// → 1 applied, 0 this node was not registered (send a snapshot)
const SYNC = new LuaScript(`${SUBTRACT}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  subtract(KEYS[2], ARGV[1] .. 'node:' .. id)
  redis.call('ZREM', KEYS[1], id)
end
local mine = ARGV[1] .. 'node:' .. ARGV[2]
if ARGV[4] == '1' then
  subtract(KEYS[2], mine)
elseif not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0
end
for i = 5, #ARGV, 2 do
  local d = tonumber(ARGV[i + 1])
  if redis.call('HINCRBY', mine, ARGV[i], d) <= 0 then redis.call('HDEL', mine, ARGV[i]) end
  if redis.call('HINCRBY', KEYS[2], ARGV[i], d) <= 0 then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return 1
`);

// KEYS: nodes, totals   ARGV: base, nodeId
const LEAVE = new LuaScript(`${SUBTRACT}
subtract(KEYS[2], ARGV[1] .. 'node:' .. ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
return 1
`);

export interface RedisPresenceOptions {
  nodeId: string;
  prefix?: string;
  /** A node silent this long is counted out (its sockets leave the totals). */
  ttlMs?: number;
  log?: Logger;
}

const FLUSH_DELAY_MS = 50;

export class RedisPresence implements Presence {
  readonly nodeId: string;
  private local = new LocalCounts();
  /** Changes not yet sent to Redis. */
  private deltas = new LocalCounts();
  private needSnapshot = true;
  private syncing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly base: string;
  private readonly nodesKey: string;
  private readonly totalsKey: string;
  private readonly ttlMs: number;

  constructor(
    private client: RedisClient,
    private options: RedisPresenceOptions,
  ) {
    this.nodeId = options.nodeId;
    this.ttlMs = options.ttlMs ?? 15_000;
    this.base = `${options.prefix ?? 'rc'}:presence:{p}:`;
    this.nodesKey = `${this.base}nodes`;
    this.totalsKey = `${this.base}totals`;
    // Whatever Redis did while we were away (restart, data loss), re-state our counts in full.
    client.on('ready', () => {
      this.needSnapshot = true;
      this.schedule(0);
    });
  }

  static async open(url: string, options: RedisPresenceOptions & { timeoutMs?: number }): Promise<RedisPresence> {
    const client = createRedisClient(url, { name: `roomcast:${options.nodeId}:presence`, log: options.log });
    try {
      await connectClient(client, url, options.timeoutMs ?? 10_000);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    const presence = new RedisPresence(client, options);
    await presence.start();
    return presence;
  }

  /** Registers this node (replacing what a previous process with the same id left) and starts the heartbeat. */
  async start(): Promise<void> {
    await this.sync();
    const every = Math.max(100, Math.floor(this.ttlMs / 5));
    this.heartbeat = setInterval(() => this.schedule(0), every);
    this.heartbeat.unref();
  }

  onSocketBound(appId: string, userId: string): void {
    this.change(appId, userId, 1);
  }
  onSocketClosed(appId: string, userId: string): void {
    this.change(appId, userId, -1);
  }

  private change(appId: string, userId: string, delta: number): void {
    for (const field of [appField(appId), userField(appId, userId)]) {
      this.local.add(field, delta);
      this.deltas.counts.set(field, (this.deltas.counts.get(field) ?? 0) + delta);
    }
    this.schedule(FLUSH_DELAY_MS);
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.sync();
    }, delayMs);
    this.flushTimer.unref();
  }

  /** One sync at a time; a sync asked for meanwhile runs after it. */
  private sync(): Promise<void> {
    if (this.syncing) {
      this.schedule(FLUSH_DELAY_MS);
      return this.syncing;
    }
    this.syncing = this.syncOnce().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') {
      this.needSnapshot = true;
      return;
    }
    const snapshot = this.needSnapshot;
    const source = snapshot ? this.local.counts : this.deltas.counts;
    const args: (string | number)[] = [this.base, this.nodeId, this.ttlMs, snapshot ? '1' : '0'];
    for (const [field, n] of source) if (n !== 0) args.push(field, n);
    const sent = new Map(this.deltas.counts);
    this.deltas.counts.clear();
    this.needSnapshot = false;
    try {
      const applied = await SYNC.run(this.client, [this.nodesKey, this.totalsKey], args);
      if (applied === 0) {
        // We had been counted out: state everything again.
        this.needSnapshot = true;
        await this.syncOnce();
      }
    } catch (err) {
      // Unknown whether it applied: the snapshot on reconnect makes it right either way.
      this.needSnapshot = true;
      if (!snapshot) for (const [field, n] of sent) this.deltas.counts.set(field, (this.deltas.counts.get(field) ?? 0) + n);
      this.options.log?.debug({ err: (err as Error).message }, 'presence sync failed');
    }
  }

  localConnectionCount(appId: string, userId?: string): number {
    return this.local.get(userId === undefined ? appField(appId) : userField(appId, userId));
  }

  /** Cluster total plus this node's changes not yet flushed (reads follow the same connection as flushes). */
  private async read(field: string): Promise<number> {
    return guarded(this.client, async () => {
      const total = Number((await this.client.hget(this.totalsKey, field)) ?? 0);
      return Math.max(0, total + (this.needSnapshot ? 0 : (this.deltas.counts.get(field) ?? 0)));
    });
  }

  connectionCount(appId: string): Promise<number> {
    return this.read(appField(appId));
  }
  userConnectionCount(appId: string, userId: string): Promise<number> {
    return this.read(userField(appId, userId));
  }
  async isUserConnected(appId: string, userId: string): Promise<boolean> {
    return (await this.userConnectionCount(appId, userId)) > 0;
  }
  /** One HMGET for all of them (a member list of 500 was 500 round trips). */
  usersConnected(appId: string, userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return Promise.resolve([]);
    return guarded(this.client, async () => {
      const fields = userIds.map((id) => userField(appId, id));
      const totals = await this.client.hmget(this.totalsKey, ...fields);
      return fields.map((field, i) => Number(totals[i] ?? 0) + (this.needSnapshot ? 0 : (this.deltas.counts.get(field) ?? 0)) > 0);
    });
  }

  /** Leaves the cluster: this node's sockets leave the totals now rather than after the TTL. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearInterval(this.heartbeat);
    await this.syncing;
    if (this.client.status === 'ready') {
      await LEAVE.run(this.client, [this.nodesKey, this.totalsKey], [this.base, this.nodeId]).catch(() => {});
    }
    await closeClient(this.client);
  }

  /** For tests: stop heart-beating without leaving, as a crashed process would. */
  simulateCrash(): void {
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearInterval(this.heartbeat);
    this.client.disconnect();
  }
}
