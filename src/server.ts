import type { Server as NodeServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local.js';
import { LocalPresence, type Presence } from './presence/presence.js';
import { openRedisPorts } from './cluster/redis-ports.js';
import type { Config } from './config.js';
import type { Clock } from './core/clock.js';
import { type Core, createCore } from './core/core.js';
import { LocalFileStorage } from './files/local.js';
import { MemoryUsageSink } from './metering/memory-sink.js';
import { UsageMeter } from './metering/meter.js';
import { PrometheusExporter } from './metering/prometheus.js';
import { RedisUsageSink } from './metering/redis-sink.js';
import { createHttpService } from './http/app.js';
import { createNodeServer } from './http/node.js';
import { registerUwsHttp } from './http/uws.js';
import { loadUws, uwsAvailable } from './http/uws-native.js';
import type { Logger } from './observability/logger.js';
import { MemoryRateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimiter } from './ratelimit/redis.js';
import { SocketEngine } from './realtime/engine.js';
import { Gateway } from './realtime/gateway.js';
import { engineIoPollingRefusal, isEngineIoPath } from './realtime/protocol/engineio.js';
import { attachUws } from './realtime/uws.js';
import { attachWs } from './realtime/ws.js';
import type { HttpService } from './http/types.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';

export interface RoomcastServer {
  port: number;
  /** Where the data lives (the SQLite file, or the PostgreSQL URL without credentials). */
  dataLocation: string;
  transport: 'uws' | 'node';
  core: Core;
  gateway: Gateway;
  close(): Promise<void>;
}

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
  if (uwsAvailable()) return 'uws';
  log.warn('native uWebSockets.js is not available here; using the node:http + ws transport');
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
      exporter: config.metrics ? new PrometheusExporter(meter, localConnections) : undefined,
    },
    usageRetentionDays: config.usageRetentionDays,
    clock: ports.clock,
  });
  const transport = chooseTransport(config, log);
  gateway = new Gateway(core, config, log);
  const engine = new SocketEngine(gateway, {
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
    maxPayloadBytes: config.maxFrameBytes,
    connectTimeoutMs: config.authTimeoutMs,
  });
  const http = withPollingRefusal(createHttpService(core, config, log));
  const transportOptions = { maxBackpressureBytes: config.maxSocketBufferBytes };
  const closePorts = async () => {
    for (const part of opened.splice(0).reverse()) await part.close();
  };

  if (transport === 'uws') {
    const uws = loadUws();
    const app = uws.App();
    const realtime = attachUws(app, engine, transportOptions);
    opened.push(realtime);
    gateway.addServer(realtime);
    registerUwsHttp(app, http, config.maxBodyBytes);
    const listenSocket = await new Promise<unknown>((resolve, reject) => {
      app.listen(config.host, config.port, (token) => (token ? resolve(token) : reject(new Error(`cannot listen on ${config.host}:${config.port}`))));
    });
    const port = uws.us_socket_local_port(listenSocket as never);
    log.info({ port, host: config.host, transport }, 'roomcast listening');
    return {
      port,
      dataLocation: data.location,
      transport,
      core,
      gateway,
      close: async () => {
        uws.us_listen_socket_close(listenSocket as never);
        await closePorts();
      },
    };
  }

  const server: NodeServer = createNodeServer(http, config.maxBodyBytes);
  const realtime = attachWs(server, engine, transportOptions);
  opened.push(realtime);
  gateway.addServer(realtime);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, host: config.host, transport }, 'roomcast listening');
  return {
    port,
    dataLocation: data.location,
    transport,
    core,
    gateway,
    close: async () => {
      opened.splice(opened.indexOf(realtime), 1);
      await realtime.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closePorts();
    },
  };
}

/** Long-polling requests get Engine.IO's own error: roomcast speaks WebSocket only. */
function withPollingRefusal(service: HttpService): HttpService {
  return {
    streamsBody: service.streamsBody,
    handle: async (req) => {
      if (!isEngineIoPath(req.path)) return service.handle(req);
      const refusal = engineIoPollingRefusal(req.query);
      return { status: refusal.status, headers: { 'content-type': 'application/json' }, body: refusal.body };
    },
  };
}
