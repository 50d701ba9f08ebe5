import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import type { Presence } from '../cluster/presence.js';
import type { FileStorage } from '../files/storage.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import { Metric, type UsageMeter } from '../metering/meter.js';
import type { PrometheusExporter } from '../metering/prometheus.js';
import type { UsageSink } from '../metering/sink.js';
import { ConfigService } from './app-config.js';
import { AppService } from './apps.js';
import { BatchService } from './batch.js';
import { type FileOptions, FileService } from './files.js';
import { GroupService } from './groups.js';
import { IdentityService } from './identity.js';
import { InvitationService } from './invitations.js';
import { MessageActionService } from './message-actions.js';
import { MessageService } from './messages.js';
import { ModerationService } from './moderation.js';
import { PrefService } from './prefs.js';
import { Presenter } from './presenter.js';
import { RoomService } from './rooms.js';
import { SearchIndex } from './search-index.js';
import { SearchService } from './search.js';
import { TokenService } from './tokens.js';
import { UserService } from './users.js';

export interface CoreOptions {
  tokenTtlMs: number;
  files: FileOptions & { storage: FileStorage };
  /** Who is connected (this node's sockets, or the cluster's through Redis). */
  presence: Presence;
  usage: Usage;
  /** REST rate limits (memory, or Redis in cluster mode). */
  rateLimiter: RateLimiter;
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

/** The chat domain, wired: knows the store and bus ports, nothing about HTTP or sockets. */
export interface Core {
  store: Store;
  bus: Bus;
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
  present: Presenter;
  presence: Presence;
  usage: Usage;
  rateLimiter: RateLimiter;
}

export async function createCore(store: Store, bus: Bus, options: CoreOptions): Promise<Core> {
  const apps = new AppService(store, bus);
  await apps.start();
  const tokens = new TokenService(store, bus, apps, options.tokenTtlMs);
  const meter = options.usage.meter;
  const identity = new IdentityService(apps, tokens, { originRefused: (appId) => meter.count(appId, Metric.originRefused) });
  const present = new Presenter(store, options.presence);
  const users = new UserService(store, bus, tokens, present);
  const files = new FileService(store, options.files.storage, options.files);
  const index = new SearchIndex();
  const config = new ConfigService(store);
  const messages = new MessageService(store, bus, present, { files, index, censor: (appId, text) => config.censor(appId, text) });
  const invitations = new InvitationService(store, bus, present, messages);
  const rooms = new RoomService(store, bus, present, messages, invitations);
  const groups = new GroupService(store, rooms);
  rooms.useGroups(groups);
  const moderation = new ModerationService(store, bus, present);
  const prefs = new PrefService(store, bus);
  const messageActions = new MessageActionService(store, bus, present);
  const search = new SearchService(store, present, index);
  const batches = new BatchService(store, messages, rooms, present, options.onBackgroundError ?? (() => undefined));
  return { store, bus, apps, config, tokens, identity, users, rooms, invitations, groups, messages, messageActions, search, batches, moderation, files, prefs, present, presence: options.presence, usage: options.usage, rateLimiter: options.rateLimiter };
}
