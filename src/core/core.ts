import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import type { Presence } from '../presence/presence.js';
import type { FileStorage } from '../files/storage.js';
import { Members, Metric, type UsageMeter } from '../metering/meter.js';
import type { PrometheusExporter } from '../metering/prometheus.js';
import type { UsageSink } from '../metering/sink.js';
import { ConfigService } from './app-config.js';
import { AppService } from './apps.js';
import { BatchService } from './batch.js';
import { type Clock, systemClock } from './clock.js';
import { DeliveryService } from './delivery.js';
import { type FileOptions, FileService } from './files.js';
import { GroupService } from './groups.js';
import { IdentityService } from './identity.js';
import { InvitationService } from './invitations.js';
import { MessageActionService } from './message-actions.js';
import { DEFAULT_SERVICE_LIMITS, type ServiceLimits } from './limits.js';
import { MessageService } from './messages.js';
import { ModerationService } from './moderation.js';
import { PrefService } from './prefs.js';
import { Presenter } from './presenter.js';
import { type RateLimitOptions, RateLimitService } from './rate-limits.js';
import { RoomService } from './rooms.js';
import { SearchService } from './search.js';
import { SessionService } from './sessions.js';
import { TokenService } from './tokens.js';
import { UsageService } from './usage.js';
import { UserService } from './users.js';

export interface CoreOptions {
  tokenTtlMs: number;
  files: FileOptions & { storage: FileStorage };
  /** Who is connected (this node's sockets, or the cluster's through Redis). */
  presence: Presence;
  usage: Usage;
  /** Sizes and quotas on untrusted input (src/config.ts). */
  limits?: ServiceLimits;
  /** How long usage is kept (the longest `/admin/usage` range). */
  usageRetentionDays: number;
  /** The system clock unless a test moves time itself. */
  clock?: Clock;
  /** REST rate limits (the limiter: memory, or Redis in cluster mode). */
  rateLimits: RateLimitOptions;
  /** Told of failures in background work (batch sends), for the log. */
  onBackgroundError?: (err: unknown) => void;
}

/** Key usage metering: the in-memory meter and the sink its batches go to. */
export interface Usage {
  meter: UsageMeter;
  sink: UsageSink;
  /** Present when `/metrics` is enabled. */
  exporter?: PrometheusExporter;
}

/**
 * The chat domain, wired. HTTP and realtime reach it only through these services: the
 * store, bus, presence and usage sink are behind them (no field here exposes a port).
 */
export interface Core {
  apps: AppService;
  config: ConfigService;
  tokens: TokenService;
  identity: IdentityService;
  users: UserService;
  rooms: RoomService;
  invitations: InvitationService;
  groups: GroupService;
  messages: MessageService;
  messageActions: MessageActionService;
  search: SearchService;
  batches: BatchService;
  moderation: ModerationService;
  files: FileService;
  prefs: PrefService;
  delivery: DeliveryService;
  usage: UsageService;
  sessions: SessionService;
  rateLimits: RateLimitService;
  clock: Clock;
  /** Sizes and quotas on untrusted input (src/config.ts). */
  limits: ServiceLimits;
}

export async function createCore(store: Store, bus: Bus, options: CoreOptions): Promise<Core> {
  const clock = options.clock ?? systemClock;
  const apps = new AppService(store, bus, clock);
  await apps.start();
  const tokens = new TokenService(store, bus, apps, options.tokenTtlMs, clock);
  const meter = options.usage.meter;
  const identity = new IdentityService(apps, tokens, {
    originRefused: (appId, origin) => {
      meter.count(appId, Metric.originRefused);
      meter.member(appId, Members.refusedOrigins, origin);
    },
  });
  const present = new Presenter(store, options.presence, clock);
  const limits = options.limits ?? DEFAULT_SERVICE_LIMITS;
  const delivery = new DeliveryService(store, bus, present, options.presence, clock);
  const users = new UserService(store, bus, tokens, present, delivery, clock, limits);
  const files = new FileService(store, options.files.storage, options.files, clock, limits);
  const config = new ConfigService(store);
  const messages = new MessageService(store, bus, present, clock, limits, delivery, {
    files,
    censor: (appId, text) => config.censor(appId, text),
  });
  const invitations = new InvitationService(store, bus, present, messages);
  const rooms = new RoomService(store, bus, present, messages, clock, delivery, invitations);
  const groups = new GroupService(store, rooms);
  rooms.useGroups(groups);
  const moderation = new ModerationService(store, bus, present, clock);
  const prefs = new PrefService(store, bus);
  const messageActions = new MessageActionService(store, bus, present, messages);
  const search = new SearchService(store, present);
  const batches = new BatchService(store, messages, rooms, present, options.onBackgroundError ?? (() => undefined));
  const usage = new UsageService(meter, options.usage.sink, options.presence, store, clock, options.usageRetentionDays, options.usage.exporter);
  const sessions = new SessionService(store, bus, options.presence, users);
  const rateLimits = new RateLimitService(options.rateLimits);
  return {
    apps, config, tokens, identity, users, rooms, invitations, groups, messages, messageActions, search, batches,
    moderation, files, prefs, delivery, usage, sessions, rateLimits, clock, limits,
  };
}
