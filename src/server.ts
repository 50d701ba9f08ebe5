import type { Server as NodeServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local.js';
import { LocalPresence, type Presence } from './cluster/presence.js';
import { openRedisPorts } from './cluster/redis-ports.js';
import type { Config } from './config.js';
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
import type { RealtimeServer } from './realtime/types.js';
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

/** The composition root: store, bus, core, transports. */
export async function startServer(config: Config, log: Logger, ports: Ports = {}): Promise<RoomcastServer> {
  // Data: SQLite by default, PostgreSQL with ROOMCAST_DATABASE_URL. ROOMCAST_REDIS_URL moves
  // bus and presence to Redis (cluster mode).
  const opened = ports.store ? { store: ports.store, location: 'given store' } : await openStore(config, log);
  const store = opened.store;
  let redis: Awaited<ReturnType<typeof openRedisPorts>> | undefined;
  try {
    redis = config.redisUrl && !ports.bus ? await openRedisPorts(config, log) : undefined;
  } catch (err) {
    await store.close();
    throw err;
  }
  const bus = ports.bus ?? redis?.bus ?? new LocalBus();
  const presence = ports.presence ?? redis?.presence ?? new LocalPresence(config.nodeId);
  const retentionMinutes = Math.ceil(config.usageRetentionDays * 1440);
  const usageSink = config.redisUrl
    ? await RedisUsageSink.open(config.redisUrl, { prefix: config.redisPrefix, nodeId: config.nodeId, retentionMinutes, log })
    : new MemoryUsageSink(retentionMinutes);
  // The meter samples this node's sockets through the gateway, built just below.
  const meter = new UsageMeter(
    usageSink,
    { local: () => gateway.connectionsByApp(), cluster: (appId) => presence.connectionCount(appId) },
    config.usageFlushMs,
  );
  const rateLimiter = config.redisUrl
    ? await RedisRateLimiter.open(config.redisUrl, { prefix: config.redisPrefix, nodeId: config.nodeId, log })
    : new MemoryRateLimiter();
  const core = await createCore(store, bus, {
    rateLimiter,
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
      exporter: config.metrics ? new PrometheusExporter(meter, () => gateway.connectionsByApp()) : undefined,
    },
  });
  const transport = chooseTransport(config, log);
  const gateway = new Gateway(core, config, log);
  const engine = new SocketEngine(gateway, {
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
    maxPayloadBytes: config.maxFrameBytes,
    connectTimeoutMs: config.authTimeoutMs,
  });
  const http = withPollingRefusal(createHttpService(core, config, log));

  let realtime: RealtimeServer | undefined;
  const closePorts = async () => {
    await meter.close();
    await usageSink.close();
    await rateLimiter.close();
    await presence.close();
    await bus.close();
    await store.close();
  };

  if (transport === 'uws') {
    const uws = loadUws();
    const app = uws.App();
    realtime = attachUws(app, engine);
    gateway.addServer(realtime);
    registerUwsHttp(app, http, config.maxBodyBytes);
    const listenSocket = await new Promise<unknown>((resolve, reject) => {
      app.listen(config.host, config.port, (token) => (token ? resolve(token) : reject(new Error(`cannot listen on ${config.host}:${config.port}`))));
    });
    const port = uws.us_socket_local_port(listenSocket as never);
    log.info({ port, host: config.host, transport }, 'roomcast listening');
    return {
      port,
      dataLocation: opened.location,
      transport,
      core,
      gateway,
      close: async () => {
        uws.us_listen_socket_close(listenSocket as never);
        await realtime!.close();
        await closePorts();
      },
    };
  }

  const server: NodeServer = createNodeServer(http, config.maxBodyBytes);
  realtime = attachWs(server, engine);
  gateway.addServer(realtime);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, host: config.host, transport }, 'roomcast listening');
  return {
    port,
    dataLocation: opened.location,
    transport,
    core,
    gateway,
    close: async () => {
      await realtime?.close();
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
