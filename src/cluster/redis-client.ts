import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { Errors, isImError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';

/**
 * One place that turns ROOMCAST_REDIS_URL into ioredis clients, with the options every
 * roomcast connection shares: fail fast while Redis is away (no offline queue, no retries of
 * commands whose fate is unknown), reconnect quickly and forever, time out hung commands.
 *
 * Accepted forms:
 *   redis://[[user]:password@]host[:port][/db]        (rediss:// for TLS)
 *   redis-sentinel://[[user]:password@]host:port[,host:port…]/mastername[/db]
 *   redis-cluster://[[user]:password@]host:port[,host:port…]
 */
export type RedisTarget =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; db: number; username?: string; password?: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string };

/** The client type the store, bus and presence use (a Cluster speaks the same commands). */
export type RedisClient = Redis;

export function parseRedisUrl(url: string): RedisTarget {
  const m = /^([a-z-]+):\/\/(?:([^@/]*)@)?([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error('ROOMCAST_REDIS_URL: not a redis://, redis-sentinel:// or redis-cluster:// URL');
  const [, scheme, auth, hosts, path = ''] = m;
  if (scheme === 'redis' || scheme === 'rediss') return { kind: 'standalone', url };
  const credentials: { username?: string; password?: string } = {};
  if (auth) {
    const colon = auth.indexOf(':');
    const user = colon < 0 ? '' : decodeURIComponent(auth.slice(0, colon));
    const password = decodeURIComponent(colon < 0 ? auth : auth.slice(colon + 1));
    if (user) credentials.username = user;
    if (password) credentials.password = password;
  }
  const list = hosts!.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at < 0 ? hp : hp.slice(0, at);
    const port = at < 0 ? (scheme === 'redis-sentinel' ? 26379 : 6379) : Number(hp.slice(at + 1));
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`ROOMCAST_REDIS_URL: bad host:port '${hp}'`);
    return { host: host.replace(/^\[|\]$/g, ''), port };
  });
  if (scheme === 'redis-cluster') return { kind: 'cluster', nodes: list, ...credentials };
  if (scheme === 'redis-sentinel') {
    const [name, db = '0'] = path.split('/');
    if (!name) throw new Error('ROOMCAST_REDIS_URL: redis-sentinel:// needs the master name as its path');
    return { kind: 'sentinel', sentinels: list, name: decodeURIComponent(name), db: Number(db) || 0, ...credentials };
  }
  throw new Error(`ROOMCAST_REDIS_URL: unsupported scheme '${scheme}'`);
}

/** Where to connect, without credentials (for logs). */
export function describeRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

export interface ClientOptions {
  /** Shown in CLIENT LIST as `roomcast:<node>:<role>`. */
  name: string;
  autoPipelining?: boolean;
  /** Sharded pub/sub on a cluster needs ioredis' per-shard subscribers. */
  shardedSubscribers?: boolean;
  /** Where connection losses and recoveries are reported (once per outage, not per retry). */
  log?: Logger;
}

const COMMAND_TIMEOUT_MS = 5_000;
const reconnectDelay = (times: number): number => Math.min(50 * times, 1_000);

const common = (o: ClientOptions): RedisOptions => ({
  connectionName: o.name.replace(/\s/g, '_'),
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
  commandTimeout: COMMAND_TIMEOUT_MS,
  connectTimeout: 5_000,
  enableAutoPipelining: o.autoPipelining ?? false,
});

/** A new client (not yet connected: call `connectClient`). */
export function createRedisClient(url: string, o: ClientOptions): RedisClient {
  const client = newClient(url, o);
  let lost = false;
  client.on('error', (err: Error) => {
    if (lost) return;
    lost = true;
    o.log?.warn({ redis: describeRedisUrl(url), connection: o.name, err: err.message }, 'redis connection lost; retrying');
  });
  client.on('ready', () => {
    if (lost) o.log?.info({ redis: describeRedisUrl(url), connection: o.name }, 'redis connection back');
    lost = false;
  });
  return client;
}

function newClient(url: string, o: ClientOptions): RedisClient {
  const target = parseRedisUrl(url);
  switch (target.kind) {
    case 'standalone':
      return new Redis(url, { ...common(o), retryStrategy: reconnectDelay });
    case 'sentinel':
      return new Redis({
        ...common(o),
        retryStrategy: reconnectDelay,
        sentinelRetryStrategy: reconnectDelay,
        sentinels: target.sentinels,
        name: target.name,
        db: target.db,
        username: target.username,
        password: target.password,
      });
    case 'cluster': {
      const { enableOfflineQueue: _q, lazyConnect: _l, enableAutoPipelining: _p, ...redisOptions } = common(o);
      const cluster = new Cluster(target.nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: o.autoPipelining ?? false,
        shardedSubscribers: o.shardedSubscribers ?? false,
        clusterRetryStrategy: reconnectDelay,
        redisOptions: { ...redisOptions, username: target.username, password: target.password },
      });
      return cluster as unknown as RedisClient;
    }
  }
}

/**
 * Connects and waits until the client is ready, up to `timeoutMs`; ioredis keeps reconnecting
 * in the background either way. Throws a message naming the (credential-free) URL on timeout.
 */
export async function connectClient(client: RedisClient, url: string, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    client.once('ready', onReady);
  });
  if (client.status === 'wait') client.connect().catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`cannot reach Redis at ${describeRedisUrl(url)} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
    client.off('ready', onReady);
  }
}

/** Closes politely when possible, at once otherwise. */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    await Promise.race([client.quit().catch(() => {}), new Promise((r) => setTimeout(r, 1_000).unref())]);
  }
  client.disconnect();
}

/**
 * Errors that mean "Redis is not there right now" (connection closed, not connected, timed
 * out, loading its data, failing over) as opposed to a bug or a refused command.
 */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/.test(err.message);
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}
const UNAVAILABLE_MESSAGES =
  /^(Connection is closed|Stream isn't writeable|Command timed out|Cluster isn't ready|Cluster is disconnect|None of startup nodes|Node is disconnected|connect ETIMEDOUT|Connection is (aborted|discarded)|Reached the max retries)/;

/** Runs a Redis operation; "Redis is away" becomes STORE_UNAVAILABLE (503), anything else is rethrown. */
export async function guarded<T>(client: RedisClient, operation: () => Promise<T>): Promise<T> {
  if (client.status !== 'ready') throw Errors.storeUnavailable();
  try {
    return await operation();
  } catch (err) {
    if (isImError(err)) throw err;
    if (isUnavailableError(err)) throw Errors.storeUnavailable();
    throw StoreError.from(err);
  }
}

/**
 * A failed store command, reduced to its name and message: the client's own error carries the
 * command and its arguments (whole records, application secrets included), which must never
 * travel further, into a log or anywhere else.
 */
export class StoreError extends Error {
  static from(err: unknown): StoreError {
    const e = new StoreError(err instanceof Error ? err.message : 'store command failed');
    e.name = `StoreError(${err instanceof Error ? err.name : 'unknown'})`;
    return e;
  }
}

/** A Lua script run by EVALSHA, loaded on first use (and again after a Redis restart). */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
