import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * Every setting, in one table: its environment variable, its type and its default.
 * Sources, strongest first: environment, the JSON file named by ROOMCAST_CONFIG, defaults.
 * README.md lists the same table for users.
 */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) =>
  typeof v === 'boolean' ? v : ['true', '1', 'yes'].includes(v),
);
const list = z.union([z.array(z.string()), z.string()]).transform((v) =>
  (typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter(Boolean),
);

const SETTINGS = {
  port: { env: 'ROOMCAST_PORT', schema: int(0, 65535), default: 3100 },
  host: { env: 'ROOMCAST_HOST', schema: z.string().min(1), default: '127.0.0.1' },
  transport: { env: 'ROOMCAST_TRANSPORT', schema: z.enum(['auto', 'uws', 'node']), default: 'auto' },
  operatorSecret: { env: 'ROOMCAST_OPERATOR_SECRET', schema: z.string(), default: '' },
  logLevel: {
    env: 'ROOMCAST_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
  },
  demo: { env: 'ROOMCAST_DEMO', schema: bool, default: true },
  tokenTtlDays: { env: 'ROOMCAST_TOKEN_TTL_DAYS', schema: z.coerce.number().positive().max(3650), default: 7 },
  maxBodyBytes: { env: 'ROOMCAST_MAX_BODY_BYTES', schema: int(1024, 64 * 1024 * 1024), default: 1024 * 1024 },
  corsOrigins: { env: 'ROOMCAST_CORS_ORIGINS', schema: list, default: ['*'] },
  trustProxy: { env: 'ROOMCAST_TRUST_PROXY', schema: bool, default: false },
  authTimeoutMs: { env: 'ROOMCAST_AUTH_TIMEOUT_MS', schema: int(100, 600_000), default: 10_000 },
  pingIntervalMs: { env: 'ROOMCAST_PING_INTERVAL_MS', schema: int(100, 600_000), default: 25_000 },
  pingTimeoutMs: { env: 'ROOMCAST_PING_TIMEOUT_MS', schema: int(100, 600_000), default: 20_000 },
  maxFrameBytes: { env: 'ROOMCAST_MAX_FRAME_BYTES', schema: int(1024, 16 * 1024 * 1024), default: 1024 * 1024 },
  maxSocketsPerUser: { env: 'ROOMCAST_MAX_SOCKETS_PER_USER', schema: int(1, 100_000), default: 20 },
  maxSocketsPerApp: { env: 'ROOMCAST_MAX_SOCKETS_PER_APP', schema: int(1, 10_000_000), default: 100_000 },
  socketEventsPerSecond: { env: 'ROOMCAST_SOCKET_EVENTS_PER_SECOND', schema: int(1, 100_000), default: 50 },
  usageRetentionDays: { env: 'ROOMCAST_USAGE_RETENTION_DAYS', schema: z.coerce.number().positive().max(400), default: 7 },
  usageFlushMs: { env: 'ROOMCAST_USAGE_FLUSH_MS', schema: int(50, 600_000), default: 5_000 },
  metrics: { env: 'ROOMCAST_METRICS', schema: bool, default: false },
  filesDir: { env: 'ROOMCAST_FILES_DIR', schema: z.string().min(1), default: './data/files' },
  maxUploadBytes: { env: 'ROOMCAST_MAX_UPLOAD_BYTES', schema: int(1, 10 * 1024 * 1024 * 1024), default: 20 * 1024 * 1024 },
  uploadTypes: {
    env: 'ROOMCAST_UPLOAD_TYPES',
    schema: list,
    default: [
      'image/*', 'video/*', 'audio/*', 'application/pdf', 'text/plain', 'text/csv', 'application/zip',
      'application/msword', 'application/vnd.openxmlformats-officedocument.*', 'application/vnd.ms-excel',
      'application/vnd.ms-powerpoint', 'application/rtf',
    ],
  },
  signedUrlTtlSeconds: { env: 'ROOMCAST_SIGNED_URL_TTL_SECONDS', schema: int(1, 7 * 86_400), default: 600 },
  handshakesPerMinutePerAddress: {
    env: 'ROOMCAST_HANDSHAKES_PER_MINUTE_PER_ADDRESS',
    schema: int(1, 10_000_000),
    default: 600,
  },
  handshakesPerMinutePerKey: {
    env: 'ROOMCAST_HANDSHAKES_PER_MINUTE_PER_KEY',
    schema: int(1, 10_000_000),
    default: 60_000,
  },
  // Cluster mode: a Redis URL moves store, bus and connection counts to Redis (README: Running a cluster).
  redisUrl: {
    env: 'ROOMCAST_REDIS_URL',
    schema: z.string().regex(/^$|^(rediss?|redis-sentinel|redis-cluster):\/\/.+/, 'expected redis://, rediss://, redis-sentinel:// or redis-cluster://'),
    default: '',
  },
  redisPrefix: { env: 'ROOMCAST_REDIS_PREFIX', schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), default: 'rc' },
  redisShardedPubsub: { env: 'ROOMCAST_REDIS_SHARDED_PUBSUB', schema: bool, default: false },
  nodeId: { env: 'ROOMCAST_NODE_ID', schema: z.string().min(1).max(128), default: `${hostname()}-${process.pid}` },
  presenceTtlMs: { env: 'ROOMCAST_PRESENCE_TTL_MS', schema: int(500, 3_600_000), default: 15_000 },
  // Limits on untrusted input (README: Limits). Each is refused with a 4xx before anything is stored.
  maxJsonDepth: { env: 'ROOMCAST_MAX_JSON_DEPTH', schema: int(2, 256), default: 32 },
  maxJsonArrayLength: { env: 'ROOMCAST_MAX_JSON_ARRAY_LENGTH', schema: int(1, 1_000_000), default: 1000 },
  maxJsonObjectKeys: { env: 'ROOMCAST_MAX_JSON_OBJECT_KEYS', schema: int(1, 1_000_000), default: 1000 },
  maxStringLength: { env: 'ROOMCAST_MAX_STRING_LENGTH', schema: int(16, 16 * 1024 * 1024), default: 100_000 },
  maxMessageBytes: { env: 'ROOMCAST_MAX_MESSAGE_BYTES', schema: int(256, 16 * 1024 * 1024), default: 64 * 1024 },
  maxCustomFields: { env: 'ROOMCAST_MAX_CUSTOM_FIELDS', schema: int(0, 10_000), default: 64 },
  messagesPerMinutePerUser: { env: 'ROOMCAST_MESSAGES_PER_MINUTE_PER_USER', schema: int(1, 10_000_000), default: 600 },
  uploadBytesPerHourPerUser: {
    env: 'ROOMCAST_UPLOAD_BYTES_PER_HOUR_PER_USER',
    schema: int(1, 1024 * 1024 * 1024 * 1024),
    default: 1024 * 1024 * 1024,
  },
  maxPageBytes: { env: 'ROOMCAST_MAX_PAGE_BYTES', schema: int(4096, 1024 * 1024 * 1024), default: 4 * 1024 * 1024 },
  maxConnectAttempts: { env: 'ROOMCAST_MAX_CONNECT_ATTEMPTS', schema: int(1, 1000), default: 3 },
  maxUnauthenticatedSocketsPerAddress: {
    env: 'ROOMCAST_MAX_UNAUTHENTICATED_SOCKETS_PER_ADDRESS',
    schema: int(1, 10_000_000),
    default: 256,
  },
  trustProxyHops: { env: 'ROOMCAST_TRUST_PROXY_HOPS', schema: int(1, 16), default: 1 },
  // Graceful stop (SIGTERM/SIGINT): readiness off, wait for the balancer to notice, stop accepting,
  // close sockets spread over a window, finish REST requests, flush; exit within the timeout.
  drainDelayMs: { env: 'ROOMCAST_DRAIN_DELAY_MS', schema: int(0, 600_000), default: 2_000 },
  drainWindowMs: { env: 'ROOMCAST_DRAIN_WINDOW_MS', schema: int(0, 600_000), default: 2_000 },
  shutdownTimeoutMs: { env: 'ROOMCAST_SHUTDOWN_TIMEOUT_MS', schema: int(100, 3_600_000), default: 8_000 },
  // TLS: both paths set = HTTPS and WSS on the same port; SIGHUP re-reads them (node transport).
  tlsCertFile: { env: 'ROOMCAST_TLS_CERT_FILE', schema: z.string(), default: '' },
  tlsKeyFile: { env: 'ROOMCAST_TLS_KEY_FILE', schema: z.string(), default: '' },
  // Durable data (README: Data and backups): an SQLite file by default, PostgreSQL when a URL is given.
  databasePath: { env: 'ROOMCAST_DATABASE_PATH', schema: z.string().min(1), default: './data/roomcast.db' },
  databaseUrl: {
    env: 'ROOMCAST_DATABASE_URL',
    schema: z.string().regex(/^$|^postgres(ql)?:\/\/.+/, 'expected postgres:// or postgresql://'),
    default: '',
  },
  databaseSchema: { env: 'ROOMCAST_DATABASE_SCHEMA', schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/), default: 'public' },
  databasePoolSize: { env: 'ROOMCAST_DATABASE_POOL_SIZE', schema: int(1, 1000), default: 10 },
  sqliteSynchronous: { env: 'ROOMCAST_SQLITE_SYNCHRONOUS', schema: z.enum(['normal', 'full']), default: 'normal' },
  /**
   * Unsent output a socket may hold before it is cut as a slow consumer (logged with what it held,
   * and metered). "Unsent": accepted by the node, not yet handed to the kernel; it may pass this by
   * one event-loop turn's frames before the cut. /metrics: roomcast_socket_buffered_bytes.
   */
  maxSocketBufferBytes: { env: 'ROOMCAST_MAX_SOCKET_BUFFER_BYTES', schema: int(16 * 1024, 256 * 1024 * 1024), default: 1024 * 1024 },
  // IMKIT's sandbox sign-in (`POST /auths/sign/v2` with the client key alone): development only.
  sandboxSignIn: { env: 'ROOMCAST_SANDBOX_SIGN_IN', schema: bool, default: false },
  // REST rate limits per minute (IMKIT: 1000 per API key); 0 = no limit. Cluster-wide in cluster mode.
  restRequestsPerMinutePerApiKey: { env: 'ROOMCAST_REST_REQUESTS_PER_MINUTE_PER_API_KEY', schema: int(0, 100_000_000), default: 1000 },
  restRequestsPerMinutePerUser: { env: 'ROOMCAST_REST_REQUESTS_PER_MINUTE_PER_USER', schema: int(0, 100_000_000), default: 1000 },
  // Engine.IO long-polling (socket.io-client's default first transport); behind a balancer it needs sticky sessions.
  polling: { env: 'ROOMCAST_POLLING', schema: bool, default: true },
  // Offline delivery: the outbox worker, webhooks and push providers (README: Webhooks and push).
  outboxPollMs: { env: 'ROOMCAST_OUTBOX_POLL_MS', schema: int(10, 60_000), default: 500 },
  outboxBatch: { env: 'ROOMCAST_OUTBOX_BATCH', schema: int(1, 1000), default: 50 },
  outboxMaxAttempts: { env: 'ROOMCAST_OUTBOX_MAX_ATTEMPTS', schema: int(1, 100), default: 8 },
  outboxRetryBaseMs: { env: 'ROOMCAST_OUTBOX_RETRY_BASE_MS', schema: int(1, 3_600_000), default: 2_000 },
  outboxRetryMaxMs: { env: 'ROOMCAST_OUTBOX_RETRY_MAX_MS', schema: int(1, 86_400_000), default: 600_000 },
  webhookTimeoutMs: { env: 'ROOMCAST_WEBHOOK_TIMEOUT_MS', schema: int(100, 120_000), default: 5_000 },
  pushTimeoutMs: { env: 'ROOMCAST_PUSH_TIMEOUT_MS', schema: int(100, 120_000), default: 10_000 },
  pushBatchSize: { env: 'ROOMCAST_PUSH_BATCH_SIZE', schema: int(1, 10_000), default: 500 },
  fcmBaseUrl: { env: 'ROOMCAST_FCM_BASE_URL', schema: z.url(), default: 'https://fcm.googleapis.com' },
  /** Empty: the service account's own token_uri. */
  fcmTokenUrl: { env: 'ROOMCAST_FCM_TOKEN_URL', schema: z.union([z.literal(''), z.url()]), default: '' },
  /** Empty: Apple's production or sandbox host, as the application's APNs settings say. */
  apnsUrl: { env: 'ROOMCAST_APNS_URL', schema: z.union([z.literal(''), z.url()]), default: '' },
  /** PEM file of extra certificate authorities trusted for push provider TLS (a private proxy). */
  pushCaFile: { env: 'ROOMCAST_PUSH_CA_FILE', schema: z.string(), default: '' },
} as const;

type Settings = typeof SETTINGS;
const SECRET_SETTINGS = new Set<string>(['operatorSecret', 'redisUrl', 'databaseUrl']);
export type Config = { -readonly [K in keyof Settings]: z.output<Settings[K]['schema']> };

export class ConfigError extends Error {}

/** Reads and validates the configuration; a bad value throws ConfigError naming the setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const file = env.ROOMCAST_CONFIG ? readConfigFile(env.ROOMCAST_CONFIG) : {};
  const config: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const fromEnv = env[setting.env];
    const raw =
      key in overrides ? (overrides as Record<string, unknown>)[key]
      : fromEnv !== undefined && fromEnv !== '' ? fromEnv
      : key in file ? file[key]
      : setting.default;
    const parsed = (setting.schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const source = fromEnv !== undefined && fromEnv !== '' ? setting.env : key in file ? `${key} in ${env.ROOMCAST_CONFIG}` : setting.env;
      // Values that may hold credentials are never echoed (a mistyped Redis URL carries a password).
      const shown = SECRET_SETTINGS.has(key) ? '(value hidden)' : `(got ${JSON.stringify(raw)})`;
      throw new ConfigError(`${source}: ${parsed.error.issues[0]!.message} ${shown}`);
    }
    config[key] = parsed.data;
  }
  for (const key of Object.keys(file)) {
    if (!(key in SETTINGS)) throw new ConfigError(`${key} in ${env.ROOMCAST_CONFIG}: unknown setting`);
  }
  checkTls(config as Config);
  return config as Config;
}

/** TLS needs both files, readable: a half-configured or unreadable pair stops the start, naming the file. */
function checkTls(config: Config): void {
  const { tlsCertFile: cert, tlsKeyFile: key } = config;
  if (!cert && !key) return;
  if (!cert || !key) {
    throw new ConfigError(`${cert ? 'ROOMCAST_TLS_KEY_FILE' : 'ROOMCAST_TLS_CERT_FILE'}: required when ${cert ? 'ROOMCAST_TLS_CERT_FILE' : 'ROOMCAST_TLS_KEY_FILE'} is set`);
  }
  for (const [name, path] of [['ROOMCAST_TLS_CERT_FILE', cert], ['ROOMCAST_TLS_KEY_FILE', key]] as const) {
    try {
      readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`ROOMCAST_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`ROOMCAST_CONFIG: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`ROOMCAST_CONFIG: ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
