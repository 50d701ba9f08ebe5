import { readFileSync } from 'node:fs';
import http, { type Server as NodeServer } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local.js';
import { LocalPresence, type Presence } from './presence/presence.js';
import { openRedisPorts } from './cluster/redis-ports.js';
import type { Config } from './config.js';
import type { Clock } from './core/clock.js';
import { type Core, createCore } from './core/core.js';
import { ApnsProvider } from './delivery/apns.js';
import { FcmProvider } from './delivery/fcm.js';
import { OutboxWorker } from './delivery/worker.js';
import { LocalFileStorage } from './files/local.js';
import { MemoryUsageSink } from './metering/memory-sink.js';
import { UsageMeter } from './metering/meter.js';
import { PrometheusExporter } from './metering/prometheus.js';
import { RedisUsageSink } from './metering/redis-sink.js';
import { createHttpService } from './http/app.js';
import type { HttpService } from './http/types.js';
import { attachNodeHttp } from './http/node.js';
import { registerUwsHttp } from './http/uws.js';
import { loadUws, uwsUnavailableReason } from './http/uws-native.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './observability/logger.js';
import { MemoryRateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimiter } from './ratelimit/redis.js';
import { SocketEngine } from './realtime/engine.js';
import { Gateway } from './realtime/gateway.js';
import { attachPolling, POLLING_OFF } from './realtime/polling.js';
import { attachUws } from './realtime/uws.js';
import { attachWs } from './realtime/ws.js';
import type { SocketBuffers } from './realtime/types.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';

export interface RoomcastServer {
  port: number;
  /** Where the data lives (the SQLite file, or the PostgreSQL URL without credentials). */
  dataLocation: string;
  transport: 'uws' | 'node';
  /** Serving HTTPS and WSS. */
  tls: boolean;
  core: Core;
  gateway: Gateway;
  lifecycle: Lifecycle;
  /**
   * Graceful stop: readiness off, wait `drainDelayMs` for balancers to notice, stop accepting,
   * close every socket's transport spread over `drainWindowMs` (clients reconnect elsewhere),
   * wait for REST requests in flight, flush usage, close. The caller bounds it in time.
   */
  drain(): Promise<void>;
  /** Closes at once (sockets' transports closed, usage flushed). */
  close(): Promise<void>;
  /** Re-reads the TLS certificate and key (SIGHUP); false when the transport cannot do it live. */
  reloadTls(): boolean;
}

/** A listening failure, with the port and the reason in words. */
export class ListenError extends Error {}

const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'the port is already in use by another process (is another roomcast running?)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address does not belong to this machine',
};

function listenError(host: string, port: number, code: string | undefined): ListenError {
  const reason = (code && LISTEN_REASONS[code]) ?? 'the system refused it';
  return new ListenError(`cannot listen on ${host}:${port}: ${reason}${code ? ` (${code})` : ''}`);
}

/** uWS says only "no": bind the same address with node to learn why. */
function probeListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

/** Before the gateway exists no socket holds anything. */
const NO_BUFFERS: SocketBuffers = { total: 0, max: 0 };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Ports {
  store?: Store;
  bus?: Bus;
  presence?: Presence;
  /** The core's clock (tests move it instead of sleeping). */
  clock?: Clock;
}

/** Which transport to run: uWS unless told otherwise or the native build cannot load. */
function chooseTransport(config: Config, log: Logger): 'uws' | 'node' {
  if (config.transport === 'node') return 'node';
  if (config.transport === 'uws') {
    loadUws(); // throws a clear error instead of silently running the slow JS fallback
    return 'uws';
  }
  const reason = uwsUnavailableReason();
  if (!reason) return 'uws';
  log.warn(`${reason}; using the node:http + ws transport`);
  return 'node';
}

/** Something opened during start that must be closed on stop, or when the start fails. */
interface Closable {
  close(): Promise<void>;
}

/**
 * The composition root: store, bus, core, transports. Whatever it opened is closed again if
 * a later step fails (a Redis connection must not outlive a failed start).
 */
export async function startServer(config: Config, log: Logger, ports: Ports = {}): Promise<RoomcastServer> {
  const opened: Closable[] = [];
  try {
    return await assemble(config, log, ports, opened);
  } catch (err) {
    // Newest first: the meter flushes into the sink before the sink goes, and so on.
    for (const part of opened.reverse()) await part.close().catch((e: unknown) => log.warn({ err: e }, 'closing after a failed start'));
    throw err;
  }
}

async function assemble(config: Config, log: Logger, ports: Ports, opened: Closable[]): Promise<RoomcastServer> {
  // Data: SQLite by default, PostgreSQL with ROOMCAST_DATABASE_URL. ROOMCAST_REDIS_URL moves
  // bus and presence to Redis (cluster mode).
  const data = ports.store ? { store: ports.store, location: 'given store' } : await openStore(config, log);
  const store = data.store;
  opened.push(store);
  const redis = config.redisUrl && !ports.bus ? await openRedisPorts(config, log) : undefined;
  const bus = ports.bus ?? redis?.bus ?? new LocalBus();
  opened.push(bus);
  const presence = ports.presence ?? redis?.presence ?? new LocalPresence(config.nodeId);
  opened.push(presence);
  const retentionMinutes = Math.ceil(config.usageRetentionDays * 1440);
  const usageSink = config.redisUrl
    ? await RedisUsageSink.open(config.redisUrl, { prefix: config.redisPrefix, nodeId: config.nodeId, retentionMinutes, log })
    : new MemoryUsageSink(retentionMinutes);
  opened.push(usageSink);
  // The meter samples this node's sockets through the gateway, which needs the core that
  // needs the meter: until the gateway exists there are no sockets to count.
  let gateway: Gateway | undefined;
  const localConnections = () => gateway?.connectionsByApp() ?? new Map<string, number>();
  const meter = new UsageMeter(
    usageSink,
    { local: localConnections, cluster: (appId) => presence.connectionCount(appId) },
    config.usageFlushMs,
    log,
  );
  opened.push(meter);
  const rateLimiter = config.redisUrl
    ? await RedisRateLimiter.open(config.redisUrl, { prefix: config.redisPrefix, nodeId: config.nodeId, log })
    : new MemoryRateLimiter();
  opened.push(rateLimiter);
  const core = await createCore(store, bus, {
    rateLimits: {
      limiter: rateLimiter,
      perApiKeyPerMinute: config.restRequestsPerMinutePerApiKey,
      perUserPerMinute: config.restRequestsPerMinutePerUser,
    },
    tokenTtlMs: config.tokenTtlDays * 86_400_000,
    limits: config,
    files: {
      storage: new LocalFileStorage(config.filesDir),
      maxBytes: config.maxUploadBytes,
      allowedTypes: config.uploadTypes,
      signedUrlTtlMs: config.signedUrlTtlSeconds * 1000,
    },
    presence,
    onBackgroundError: (err) => log.warn({ err }, 'batch send: a recipient was skipped'),
    usage: {
      meter,
      sink: usageSink,
      exporter: config.metrics
        ? new PrometheusExporter(meter, { connectionsByApp: localConnections, socketBuffers: () => gateway?.socketBuffers() ?? NO_BUFFERS })
        : undefined,
    },
    usageRetentionDays: config.usageRetentionDays,
    clock: ports.clock,
  });
  const worker = startOutboxWorker(core, config, log);
  opened.push({ close: () => worker.stop() });
  const transport = chooseTransport(config, log);
  gateway = new Gateway(core, config, log);
  const engine = new SocketEngine(gateway, {
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
    maxPayloadBytes: config.maxFrameBytes,
    connectTimeoutMs: config.authTimeoutMs,
    maxConnectAttempts: config.maxConnectAttempts,
  });
  const lifecycle = new Lifecycle();
  // Long-polling (Engine.IO's default first transport) shares the engine with both WebSocket stacks.
  const polling = config.polling ? attachPolling(engine, { maxBufferedBytes: config.maxSocketBufferBytes }) : undefined;
  if (polling) {
    opened.push(polling);
    gateway.addServer(polling);
  }
  const service = createHttpService(core, config, log, undefined, lifecycle, polling ?? POLLING_OFF);
  const transportOptions = { maxBackpressureBytes: config.maxSocketBufferBytes };
  const tls = Boolean(config.tlsCertFile && config.tlsKeyFile);
  const listening = transport === 'uws'
    ? await listenUws(config, engine, service, gateway, transportOptions)
    : await listenNode(config, engine, service, gateway, transportOptions);
  opened.push(listening); // closed first: transports, then the meter's last flush, then the ports
  log.info({ port: listening.port, host: config.host, transport, tls }, 'roomcast listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const part of opened.splice(0).reverse()) await part.close();
    })());
  let draining: Promise<void> | undefined;
  const drain = () =>
    (draining ??= (async () => {
      lifecycle.draining = true;
      log.info({ delayMs: config.drainDelayMs, windowMs: config.drainWindowMs, sockets: gateway.connectionCount() }, 'draining: readiness off');
      await sleep(config.drainDelayMs);
      listening.stopAccepting();
      log.info('draining: no longer accepting connections, closing sockets');
      await engine.drain(config.drainWindowMs);
      await lifecycle.idle();
      await close();
      log.info('drained');
    })());

  return {
    port: listening.port,
    dataLocation: data.location,
    transport,
    tls,
    core,
    gateway,
    lifecycle,
    drain,
    close,
    reloadTls: () => listening.reloadTls(),
  };
}

interface TransportOptions {
  maxBackpressureBytes: number;
}

/** One listening transport, as the composition root drives it. */
interface Listening extends Closable {
  port: number;
  /** Stops accepting new connections; open ones stay. */
  stopAccepting(): void;
  close(): Promise<void>;
  reloadTls(): boolean;
}

/** uSockets' listen option (the d.ts declares the enum, the addon does not export it). */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;
type UwsListenWithOptions = (host: string, port: number, options: number, cb: (token: unknown) => void) => unknown;

/** uWebSockets.js (SSLApp with TLS), on an exclusive port: a second server on it is refused. */
async function listenUws(config: Config, engine: SocketEngine, service: HttpService, gateway: Gateway, options: TransportOptions): Promise<Listening> {
  const uws = loadUws();
  const app = config.tlsCertFile ? uws.SSLApp({ cert_file_name: config.tlsCertFile, key_file_name: config.tlsKeyFile }) : uws.App();
  const realtime = attachUws(app, engine, options);
  gateway.addServer(realtime);
  registerUwsHttp(app, service, config.maxBodyBytes);
  // Without the exclusive option uWS sets SO_REUSEPORT, and a second server on the port would
  // silently take half of the connections.
  const listen = app.listen as unknown as UwsListenWithOptions; // the addon takes (host, port, options, cb); the d.ts omits it
  const listenSocket = await new Promise<unknown>((resolve) => {
    listen.call(app, config.host, config.port, LIBUS_LISTEN_EXCLUSIVE_PORT, (token) => resolve(token));
  });
  if (!listenSocket) throw listenError(config.host, config.port, await probeListen(config.host, config.port));
  let accepting = true;
  const stopAccepting = () => {
    if (!accepting) return;
    accepting = false;
    uws.us_listen_socket_close(listenSocket as never);
  };
  return {
    port: uws.us_socket_local_port(listenSocket as never),
    stopAccepting,
    close: async () => {
      stopAccepting();
      await realtime.close();
    },
    // uWS cannot swap the certificate of a listening SSLApp: a reload is a (drained) restart.
    reloadTls: () => false,
  };
}

/** node:http (or https) + ws; node listens exclusively by default (EADDRINUSE). */
async function listenNode(config: Config, engine: SocketEngine, service: HttpService, gateway: Gateway, options: TransportOptions): Promise<Listening> {
  const tlsFiles = () => ({ cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) });
  const server: NodeServer = config.tlsCertFile
    ? https.createServer(tlsFiles())
    : http.createServer();
  attachNodeHttp(server, service, config.maxBodyBytes);
  const realtime = attachWs(server, engine, options);
  gateway.addServer(realtime);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(config.host, config.port, err.code)));
    server.listen({ port: config.port, host: config.host, exclusive: true }, () => resolve());
  });
  let closed: Promise<void> | undefined;
  const stopAccepting = () => {
    closed ??= new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port: (server.address() as AddressInfo).port,
    stopAccepting,
    close: async () => {
      stopAccepting();
      await realtime.close();
      // Responses still being written get a moment to flush; connections that stay busy are cut.
      server.closeIdleConnections();
      await Promise.race([closed, sleep(1000)]);
      server.closeAllConnections();
      await closed;
    },
    reloadTls: () => {
      if (!(server instanceof https.Server)) return false;
      server.setSecureContext(tlsFiles()); // new handshakes use it; open connections keep theirs
      return true;
    },
  };
}

/** The outbox worker of this node, with the push providers (endpoints from the config). */
function startOutboxWorker(core: Core, config: Config, log: Logger): OutboxWorker {
  const ca = config.pushCaFile ? readFileSync(config.pushCaFile, 'utf8') : undefined;
  const providers = [
    new ApnsProvider({ url: config.apnsUrl || undefined, timeoutMs: config.pushTimeoutMs, ca }),
    new FcmProvider({ baseUrl: config.fcmBaseUrl, tokenUrl: config.fcmTokenUrl || undefined, timeoutMs: config.pushTimeoutMs, ca }),
  ];
  const worker = new OutboxWorker(core, {
    pollMs: config.outboxPollMs,
    batch: config.outboxBatch,
    maxAttempts: config.outboxMaxAttempts,
    retryBaseMs: config.outboxRetryBaseMs,
    retryMaxMs: config.outboxRetryMaxMs,
    webhookTimeoutMs: config.webhookTimeoutMs,
    pushTimeoutMs: config.pushTimeoutMs,
    pushBatchSize: config.pushBatchSize,
  }, providers, log);
  worker.start();
  return worker;
}
