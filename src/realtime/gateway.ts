import type { BusMessage, ControlMessage, DeliveryMessage } from '../bus/bus.js';
import { roomTopic, userTopic } from '../bus/bus.js';
import type { Config } from '../config.js';
import type { Core } from '../core/core.js';
import { Errors, ImError, isImError } from '../core/errors.js';
import type { Credentials, UserActor } from '../core/identity.js';
import type { AppRecord } from '../core/models.js';
import { type Bag, credentialsFrom, definedOnly, normaliseToken, requestHost, forwardedClientAddress } from '../credentials.js';
import { corsHeaders } from '../http/cors.js';
import type { Logger } from '../observability/logger.js';
import { encodeEvent } from './protocol/socketio.js';
import { jsonLimitError } from '../core/limits.js';
import { busTopic, type Encoding, encodingIndex, ENCODINGS, encodeArg, engineTopic } from './encoding.js';
import { type Expiring, ExpiryQueue } from './expiries.js';
import { Members, Metric } from '../metering/meter.js';
import { LocalBlocks } from './local-blocks.js';
import { WindowCounter } from '../core/rate-limit.js';
import { type ConnectResult, type EngineHooks, type RealtimeServer, type RealtimeSocket, SLOW_CONSUMER, type SocketBuffers, type UpgradeDecision, type UpgradeRequest } from './types.js';

/**
 * Per-socket IMKIT session. authorizeUpgrade makes it and hands it to the engine as the
 * upgrade's context, so the socket's `upgradeContext` is its session: one object per socket.
 * Every field is set in the constructor (one shape, no out-of-object property store): idle
 * sockets are most sockets. The topics it listens to are the engine socket's own (`topics()`).
 */
class Session implements Expiring {
  /** Set by onOpen. */
  socket: RealtimeSocket | undefined = undefined;
  encoding: Encoding = 'json';
  /** Set once authenticated and bound. */
  actor: UserActor | undefined = undefined;
  /**
   * What the upgrade's credentials gave: the user (authenticated, not yet bound; cleared by bind),
   * or why they were refused (the CONNECT answer carries the envelope, see authorizeUpgrade).
   */
  upgrade: UserActor | ImError | undefined = undefined;
  /** Counted against its address's cap of unauthenticated sockets, until it binds or closes. */
  pending = false;
  /** Refused in-band: deaf until the deadline closes it (an instant close makes SDKs reconnect-storm). */
  refused = false;
  /** An auth2/auth is being checked: a second one at the same time is refused (no double bind). */
  admitting = false;
  deadline: NodeJS.Timeout | undefined = undefined;
  /** Per-socket event rate limit, made on the first event (most sockets only listen). */
  events: WindowCounter | undefined = undefined;
  /** Place in the gateway's ExpiryQueue, which closes the socket when its token expires. */
  expiryIndex = -1;

  constructor(
    /** Credentials seen at upgrade time (headers or query), completed by CONNECT auth or auth2; dropped once bound. */
    public upgradeCreds: Credentials,
    /** The client's address (X-Forwarded-For behind a trusted proxy), for handshake rate limits. */
    readonly clientAddress: string,
  ) {}

  /** Read from the (shared) actor rather than kept: a number field of this size is a boxed heap number. */
  get expiresAt(): number {
    return this.actor?.expiresAt ?? 0;
  }
}
/** Credentials longer than this are refused unread (they would only grow tables and logs). */
const MAX_CREDENTIAL_LENGTH = 8192;

/** Who a socket log line is about: ids and addresses only, never a credential. */
interface SocketLogFields {
  sid?: string;
  transport?: string;
  remote: string;
  app?: string;
  user?: string;
}

const NO_CREDENTIALS: Credentials = Object.freeze({});
const NONE: readonly RealtimeSocket[] = Object.freeze([]);

/** The local listeners of one bus topic, and its engine topic names (shared by every socket joined). */
class Listening {
  /** Sockets listening, per encoding (ENCODINGS order). */
  readonly counts: [number, number] = [0, 0];
  private base64: string | undefined = undefined;
  constructor(readonly topic: string) {}
  name(encoding: Encoding): string {
    return encoding === 'json' ? this.topic : (this.base64 ??= engineTopic(this.topic, encoding));
  }
}

const isBag = (v: unknown): v is Bag => typeof v === 'object' && v !== null && !Array.isArray(v);
const session = (socket: RealtimeSocket): Session => socket.upgradeContext as Session;

/**
 * The IMKIT socket layer over the Socket.IO engine: handshake (upgrade-time credentials,
 * CONNECT `auth`, `auth2`/`auth`), `conf` encodings, subscriptions that follow membership,
 * client events, and delivery of bus events to local sockets.
 */
export class Gateway implements EngineHooks {
  private servers: RealtimeServer[] = [];
  /** appId → userId → that user's authenticated local sockets */
  private byUser = new Map<string, Map<string, Set<RealtimeSocket>>>();
  private perApp = new Map<string, number>();
  /** bus topic → local sockets listening, per encoding (decides bus subscriptions and which frames to build) */
  private listeners = new Map<string, Listening>();
  /** Sockets by token expiry. */
  private expiries = new ExpiryQueue<Session>((s) => this.tokenExpired(s));
  private apps = new Map<string, AppRecord>();
  private blocks = new LocalBlocks();
  private handshakesByAddress: WindowCounter;
  private handshakesByKey: WindowCounter;
  /** client address → its sockets not (yet) authenticated, capped per address. */
  private unauthenticated = new Map<string, number>();

  constructor(
    private core: Core,
    private config: Config,
    private log: Logger,
  ) {
    this.handshakesByAddress = new WindowCounter(config.handshakesPerMinutePerAddress, 60_000);
    this.handshakesByKey = new WindowCounter(config.handshakesPerMinutePerKey, 60_000);
    core.sessions.onEvent((topic, message) => this.onBusMessage(topic, message));
  }

  /** A transport whose sockets this gateway delivers to. */
  addServer(server: RealtimeServer): void {
    this.servers.push(server);
  }

  /** This node's authenticated sockets per application. */
  connectionsByApp(): Map<string, number> {
    return this.perApp;
  }

  /** Unsent output held for this node's authenticated sockets: in all, and by the fullest one. */
  socketBuffers(): SocketBuffers {
    let total = 0;
    let max = 0;
    for (const users of this.byUser.values()) {
      for (const sockets of users.values()) {
        for (const socket of sockets) {
          const bytes = socket.bufferedBytes;
          total += bytes;
          if (bytes > max) max = bytes;
        }
      }
    }
    return { total, max };
  }

  connectionCount(appId?: string): number {
    if (appId !== undefined) return this.perApp.get(appId) ?? 0;
    let total = 0;
    for (const n of this.perApp.values()) total += n;
    return total;
  }

  // ---- handshake -------------------------------------------------------------------------

  async authorizeUpgrade(req: UpgradeRequest): Promise<UpgradeDecision> {
    const { clientKey, token } = credentialsFrom([req.headers, Object.fromEntries(req.query)]);
    const creds: Credentials = definedOnly({
      clientKey,
      token,
      host: requestHost(req.headers, this.config.trustProxy),
      origin: req.headers.origin,
    });
    const context = new Session(creds, forwardedClientAddress(req.headers, req.remoteAddress, this.config.trustProxy, this.config.trustProxyHops));
    if ((this.unauthenticated.get(context.clientAddress) ?? 0) >= this.config.maxUnauthenticatedSocketsPerAddress) {
      const e = Errors.rateLimited('unauthenticated sockets from this address');
      return { accept: false, status: e.status, body: JSON.stringify(e.toEnvelope()) };
    }
    // Without a token the handshake completes in-band (auth2), reusing any client key given here.
    if (!creds.token) return { accept: true, context };
    try {
      context.upgrade = await this.authenticate(creds, context.clientAddress);
      return { accept: true, context };
    } catch (err) {
      const e = isImError(err) ? err : Errors.internal();
      if (!isImError(err)) this.log.error({ err }, 'socket upgrade failed');
      this.refused(e, creds, { transport: req.transport, remote: context.clientAddress });
      // Accepted, then refused in CONNECT_ERROR: an HTTP refusal of a websocket upgrade is
      // unreadable in browsers and reaches socket.io-client only as "websocket error".
      context.upgrade = e;
      return { accept: true, context };
    }
  }

  /** Engine.IO refusals (unknown sid, bad transport…) carry CORS so a browser can read them. */
  refusalHeaders(req: UpgradeRequest): Record<string, string> {
    return corsHeaders(this.config.corsOrigins, req.headers.origin, true);
  }

  /** Every socket counts against its address's cap until it authenticates or closes. */
  onOpen(socket: RealtimeSocket): void {
    if (this.log.isLevelEnabled('debug')) this.log.debug({ sid: socket.id, transport: socket.transport, remote: socket.remoteAddress }, 'socket opened');
    const s = session(socket);
    s.socket = socket;
    s.pending = true;
    const address = s.clientAddress;
    this.unauthenticated.set(address, (this.unauthenticated.get(address) ?? 0) + 1);
  }

  private settlePending(s: Session): void {
    if (!s.pending) return;
    s.pending = false;
    const address = s.clientAddress;
    const n = (this.unauthenticated.get(address) ?? 1) - 1;
    if (n <= 0) this.unauthenticated.delete(address);
    else this.unauthenticated.set(address, n);
  }

  async onConnect(socket: RealtimeSocket, auth: unknown): Promise<ConnectResult> {
    const s = session(socket);
    const { clientKey, token } = credentialsFrom([isBag(auth) ? auth : undefined]);
    const refusal = s.upgrade instanceof ImError ? s.upgrade : undefined;
    if (refusal && !token && !clientKey) {
      // The upgrade's credentials were refused and CONNECT brings no new ones: say why.
      return { ok: false, message: refusal.code, data: refusal.toEnvelope() };
    }
    const upgraded = s.upgrade !== undefined && !refusal;
    if (upgraded || clientKey || token) {
      try {
        // Credentials checked at upgrade are checked again now: a token or key revoked (or a
        // user deleted) in between must not get a socket. The upgrade already counted them.
        await this.admit(socket, { ...s.upgradeCreds, ...definedOnly({ clientKey, token }) }, upgraded);
        return { ok: true };
      } catch (err) {
        const e = isImError(err) ? err : Errors.internal();
        return { ok: false, message: e.code, data: e.toEnvelope() };
      }
    }
    // No credentials yet: IMKIT SDKs send them in-band with auth2. Close if they never do.
    s.deadline = setTimeout(() => socket.disconnect('authentication timeout'), this.config.authTimeoutMs);
    return { ok: true };
  }

  /**
   * The one admission path of every handshake (upgrade credentials, CONNECT `auth`, `auth2`):
   * authenticate (unless the upgrade already did), apply the socket limits, bind. A refusal is
   * metered and rethrown as an ImError.
   */
  private async admit(socket: RealtimeSocket, creds: Credentials, counted = false): Promise<UserActor> {
    const s = session(socket);
    let actor: UserActor | undefined;
    try {
      actor = await this.authenticate(creds, s.clientAddress, !counted);
      const limit = this.checkLimits(actor);
      if (limit) throw limit;
      await this.bind(socket, actor);
      return actor;
    } catch (err) {
      if (!isImError(err)) this.log.error({ err, sid: socket.id }, 'socket handshake failed');
      const e = isImError(err) ? err : Errors.internal();
      this.refused(e, creds, { sid: socket.id, transport: socket.transport, remote: s.clientAddress, app: actor?.app.id, user: actor?.userId });
      throw e;
    }
  }

  private async authenticate(creds: Credentials, address: string, count = true): Promise<UserActor> {
    if ((creds.clientKey?.length ?? 0) > MAX_CREDENTIAL_LENGTH) throw Errors.invalidClientKey();
    if ((creds.token?.length ?? 0) > MAX_CREDENTIAL_LENGTH) throw Errors.invalidToken();
    if (count && !this.handshakesByAddress.hit(address)) throw Errors.rateLimited('handshakes from this address');
    if (count && creds.clientKey && !this.handshakesByKey.hit(creds.clientKey)) throw Errors.rateLimited('handshakes with this client key');
    return this.core.identity.authenticateUser(creds);
  }

  private checkLimits(actor: UserActor): ImError | undefined {
    if ((this.perApp.get(actor.app.id) ?? 0) >= this.config.maxSocketsPerApp) {
      return Errors.tooManySockets('application');
    }
    const mine = this.byUser.get(actor.app.id)?.get(actor.userId)?.size ?? 0;
    if (mine >= this.config.maxSocketsPerUser) {
      return Errors.tooManySockets('user');
    }
    return undefined;
  }

  /** An authenticated socket: registered, and listening to the user's rooms and own channel. */
  private async bind(socket: RealtimeSocket, actor: UserActor): Promise<void> {
    const s = session(socket);
    clearTimeout(s.deadline);
    if (socket.closed) return; // it went away while its credentials were being checked
    this.settlePending(s);
    // Idle sockets are most sockets: drop what the handshake no longer needs.
    s.upgradeCreds = NO_CREDENTIALS;
    s.upgrade = undefined;
    let users = this.byUser.get(actor.app.id);
    if (!users) this.byUser.set(actor.app.id, (users = new Map()));
    let sockets = users.get(actor.userId);
    if (!sockets) users.set(actor.userId, (sockets = new Set()));
    s.actor = this.sharedActor(actor, sockets);
    this.armExpiry(s);
    sockets.add(socket);
    this.perApp.set(actor.app.id, (this.perApp.get(actor.app.id) ?? 0) + 1);
    this.meter.count(actor.app.id, Metric.handshakesAccepted);
    this.meter.member(actor.app.id, Members.activeUsers, actor.userId);
    void this.core.sessions.bound(actor).catch((err) => this.log.warn({ err }, 'could not record login'));
    this.listen(socket, userTopic(actor.app.id, actor.userId));
    if (sockets.size === 1) await this.loadBlocks(actor);
    for (const topic of await this.core.sessions.audiences(actor)) if (!socket.closed) this.listen(socket, topic);
    await this.core.sessions.settled(); // a cluster bus: subscribed before the client hears it is connected
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ sid: socket.id, app: actor.app.id, user: actor.userId, transport: socket.transport, remote: s.clientAddress }, 'socket authenticated');
    }
  }

  /** The socket is cut when its token expires (one queue, one timer for all sockets). */
  private armExpiry(s: Session): void {
    if (s.expiresAt <= Date.now()) return this.tokenExpired(s);
    this.expiries.add(s);
  }

  private tokenExpired(s: Session): void {
    if (s.socket && !s.socket.closed) this.cut(s.socket, Errors.invalidToken(), 'token expired');
  }

  /**
   * The user's other sockets opened with the same token share one actor (and one application
   * record per app): an idle socket holds no copy of its own.
   */
  private sharedActor(actor: UserActor, siblings: ReadonlySet<RealtimeSocket>): UserActor {
    const app = this.sharedApp(actor.app);
    for (const sibling of siblings) {
      const known = session(sibling).actor;
      if (known && known.app === app && known.tokenHash === actor.tokenHash && known.expiresAt === actor.expiresAt) return known;
      break; // the first one decides: looking further would cost every handshake O(sockets of the user)
    }
    return actor.app === app ? actor : { ...actor, app };
  }

  /** One record per application for all its sockets (a newer one, after a key change, replaces it). */
  private sharedApp(app: AppRecord): AppRecord {
    const known = this.apps.get(app.id);
    if (known && known.clientKey?.kid === app.clientKey?.kid && known.signingSecret === app.signingSecret) return known;
    this.apps.set(app.id, app);
    return app;
  }

  /** Remembers whom a newly connected user blocked, so delivery can skip the blockees' messages. */
  private async loadBlocks(actor: UserActor): Promise<void> {
    for (const blockee of await this.core.sessions.blockees(actor)) this.blocks.set(actor.app.id, actor.userId, blockee, true);
  }

  /** Joins the socket to the bus topic (its engine topic in the socket's encoding). A closed socket's topics are final. */
  private listen(socket: RealtimeSocket, topic: string): void {
    if (socket.closed) return;
    const s = session(socket);
    const known = this.listeners.get(topic);
    const entry = known ?? new Listening(topic);
    const name = entry.name(s.encoding);
    if (known && socket.topics().has(name)) return;
    if (!known) this.listeners.set(topic, entry);
    socket.join(name);
    if (entry.counts[0] + entry.counts[1] === 0) this.core.sessions.subscribe(topic);
    entry.counts[encodingIndex(s.encoding)]++;
  }

  /** Leaves the bus topic; a closed socket's topics are released by onClose. */
  private unlisten(socket: RealtimeSocket, topic: string): void {
    if (socket.closed) return;
    const s = session(socket);
    const entry = this.listeners.get(topic);
    if (!entry) return;
    const name = entry.name(s.encoding);
    if (!socket.topics().has(name)) return;
    socket.leave(name);
    this.release(entry, s.encoding);
  }

  /** One socket of `encoding` stopped listening to the entry's topic. */
  private release(entry: Listening, encoding: Encoding): void {
    entry.counts[encodingIndex(encoding)]--;
    if (entry.counts[0] + entry.counts[1] > 0) return;
    this.listeners.delete(entry.topic);
    this.core.sessions.unsubscribe(entry.topic);
  }

  // ---- client events ---------------------------------------------------------------------

  /** Returns the handling's promise so that a drain can wait for events in flight. */
  onEvent(socket: RealtimeSocket, event: string, args: unknown[], ack: ((...args: unknown[]) => void) | undefined): Promise<void> | void {
    const s = session(socket);
    if (!s || s.refused) return;
    s.events ??= new WindowCounter(this.config.socketEventsPerSecond, 1000);
    if (!s.events.hit('e')) {
      this.reply(socket, ack, Errors.rateLimited('socket events'));
      return;
    }
    const tooBig = jsonLimitError(args, this.core.limits);
    if (tooBig) {
      this.reply(socket, ack, tooBig);
      return;
    }
    return this.handle(socket, s, event, args, ack).catch((err: unknown) => {
      if (!isImError(err)) this.log.error({ err, event }, 'socket event failed');
      this.reply(socket, ack, isImError(err) ? err : Errors.internal());
    });
  }

  private async handle(socket: RealtimeSocket, s: Session, event: string, args: unknown[], ack?: (...a: unknown[]) => void) {
    switch (event) {
      case 'conf':
        return this.conf(socket, s, args[0], ack);
      case 'auth2':
      case 'auth':
        return this.auth(socket, s, args, ack);
      case 'pong':
        return; // the v2-era application heartbeat; Engine.IO does ours
      case 'chat message': {
        const actor = this.requireActor(s);
        const body = isBag(args[0]) ? args[0] : {};
        const roomId = typeof body.room === 'string' ? body.room : typeof body.roomId === 'string' ? body.roomId : undefined;
        if (!roomId) throw Errors.invalidInput('room: required');
        const saved = await this.core.messages.send(actor, roomId, body);
        this.meter.count(actor.app.id, Metric.messagesSocket);
        return this.reply(socket, ack, undefined, saved);
      }
      case 'typing': {
        const actor = this.requireActor(s);
        const roomId = typeof args[0] === 'string' ? args[0] : isBag(args[0]) && typeof args[0].room === 'string' ? args[0].room : undefined;
        if (!roomId) throw Errors.invalidInput('typing needs a room id');
        const payload = await this.core.rooms.typing(actor, roomId, args[1]);
        return ack ? this.reply(socket, ack, undefined, payload) : undefined;
      }
      default:
        throw Errors.unknownEvent(event);
    }
  }

  private requireActor(s: Session): UserActor {
    if (!s.actor) throw Errors.notAuthenticated();
    return s.actor;
  }

  /** `conf({encoding})`: switches this socket's payload encoding, moving its subscriptions. */
  private conf(socket: RealtimeSocket, s: Session, arg: unknown, ack?: (...a: unknown[]) => void): void {
    const wanted = isBag(arg) ? arg.encoding : undefined;
    const encoding: Encoding | undefined = wanted === 'base64' ? 'base64' : wanted === 'none' || wanted === 'json' || wanted === undefined ? 'json' : undefined;
    if (!encoding) throw Errors.unsupportedEncoding();
    if (encoding !== s.encoding) {
      const topics = [...socket.topics()].map((name) => busTopic(name, s.encoding));
      for (const t of topics) this.unlisten(socket, t);
      s.encoding = encoding;
      for (const t of topics) this.listen(socket, t);
    }
    this.reply(socket, ack, undefined, { encoding: wanted ?? 'none' });
  }

  /** `auth2(token, extra, ack?)` and legacy `auth(token, [deviceId], ack?)`. */
  private async auth(socket: RealtimeSocket, s: Session, args: unknown[], ack?: (...a: unknown[]) => void): Promise<void> {
    if (s.actor) return this.reply(socket, ack, undefined, this.authResult(s.actor));
    if (s.admitting) return this.reply(socket, ack, Errors.authInProgress());
    s.admitting = true;
    try {
      await this.authOnce(socket, s, args, ack);
    } finally {
      s.admitting = false;
    }
  }

  private async authOnce(socket: RealtimeSocket, s: Session, args: unknown[], ack?: (...a: unknown[]) => void): Promise<void> {
    const extra = isBag(args[1]) ? args[1] : undefined;
    const fromExtra = credentialsFrom([extra]);
    const token = typeof args[0] === 'string' && args[0] !== '' ? normaliseToken(args[0]) : fromExtra.token;
    const creds: Credentials = { ...s.upgradeCreds, ...definedOnly({ clientKey: fromExtra.clientKey, token }) };
    try {
      // A device id (in `extra`, or legacy auth's second argument) is not kept: nothing reads it.
      const actor = await this.admit(socket, creds);
      this.reply(socket, ack, undefined, this.authResult(actor));
    } catch (err) {
      const e = isImError(err) ? err : Errors.internal();
      // Refused: tell the client (ack and an `error` event), then hold the socket deaf
      // until the deadline instead of closing at once.
      s.refused = true;
      this.reply(socket, ack, e);
      socket.emit('error', encodeArg(s.encoding, e.toEnvelope()));
      clearTimeout(s.deadline);
      s.deadline = setTimeout(() => socket.disconnect(`authentication failed: ${e.code}`), this.config.authTimeoutMs);
    }
  }

  private authResult(actor: UserActor) {
    return { client: actor.userId, appId: actor.app.id };
  }

  /** Acks in IMKIT's envelope, in the socket's encoding. */
  private reply(socket: RealtimeSocket, ack: ((...a: unknown[]) => void) | undefined, error?: ImError, result?: unknown): void {
    if (!ack) return;
    const s = session(socket);
    const envelope = error ? error.toEnvelope() : { RC: 0, RM: 'OK', result };
    ack(encodeArg(s?.encoding ?? 'json', envelope));
  }

  onClose(socket: RealtimeSocket, reason: string): void {
    const s = session(socket);
    if (s) this.settlePending(s);
    if (this.log.isLevelEnabled('debug')) {
      const durationMs = Math.round(performance.now() - socket.openedAt);
      this.log.debug({ sid: socket.id, app: s?.actor?.app.id, user: s?.actor?.userId, transport: socket.transport, reason, durationMs }, 'socket closed');
    }
    if (!s) return;
    clearTimeout(s.deadline);
    this.expiries.remove(s);
    // Closed: the socket's topics no longer change, and it held each once.
    for (const name of socket.topics()) {
      const entry = this.listeners.get(busTopic(name, s.encoding));
      if (entry) this.release(entry, s.encoding);
    }
    const actor = s.actor;
    if (reason === SLOW_CONSUMER) this.slowConsumerCut(socket, actor);
    if (!actor) return;
    const users = this.byUser.get(actor.app.id);
    const sockets = users?.get(actor.userId);
    if (sockets?.delete(socket)) {
      this.perApp.set(actor.app.id, (this.perApp.get(actor.app.id) ?? 1) - 1);
      const last = sockets.size === 0;
      if (last) {
        users!.delete(actor.userId);
        this.blocks.forget(actor.app.id, actor.userId);
      }
      void this.core.sessions.closed(actor, last).catch((err) => this.log.warn({ err }, 'could not record activity'));
    }
  }

  /** The transport cut a socket that stopped reading (ROOMCAST_MAX_SOCKET_BUFFER_BYTES unsent): say so. */
  private slowConsumerCut(socket: RealtimeSocket, actor: UserActor | undefined): void {
    this.log.warn(
      { socket: socket.id, app: actor?.app.id, user: actor?.userId, transport: socket.transport, bufferedBytes: socket.bufferedBytes, limitBytes: this.config.maxSocketBufferBytes },
      'socket cut: it stopped reading and its unsent output passed the limit',
    );
    if (actor) this.meter.count(actor.app.id, Metric.slowConsumerCuts);
    this.slowConsumerCuts++;
  }

  /** Sockets this node cut for not reading (all applications, since start). */
  slowConsumerCuts = 0;

  onFrame(socket: RealtimeSocket, bytes: number): void {
    const actor = session(socket)?.actor;
    if (actor) this.meter.count(actor.app.id, Metric.bytesIn, bytes);
  }

  /**
   * A refused handshake: logged (code, application, user, transport, address; never a
   * credential) and counted against its application, known or claimed by its credentials.
   */
  private refused(error: ImError, creds: Credentials, who: SocketLogFields): void {
    const record = (app: string | undefined) => {
      // A 5xx refusal (store unavailable, …) is server trouble, not the client's: log it as an error.
      if (error.status >= 500) this.log.error({ ...who, app, code: error.code, cause: error.message }, 'socket refused');
      else this.log.info({ ...who, app, code: error.code }, 'socket refused');
      if (app) this.meter.count(app, `${Metric.handshakesRefused}.${error.code}`);
    };
    if (who.app) return record(who.app);
    void this.core.apps
      .claimedAppId(creds.clientKey, creds.host)
      .then(record, () => record(undefined));
  }

  private get meter() {
    return this.core.usage.meter;
  }

  onError(error: unknown, where: string): void {
    this.log.error({ err: error, where }, 'socket engine hook failed');
  }

  // ---- delivery and control --------------------------------------------------------------

  /** Nothing delivered from the bus may throw out of its callback: a bad event is logged and dropped. */
  private onBusMessage(topic: string, message: BusMessage): void {
    try {
      if (message.kind === 'deliver') this.deliver(topic, message);
      else this.control(message);
    } catch (err) {
      this.log.error({ err, topic, event: message.kind === 'deliver' ? message.event : message.kind }, 'could not deliver a bus event');
    }
  }

  /**
   * Serialise once per encoding in use, then one native publish per encoding. Only when a local
   * recipient blocked the sender are that recipient's sockets taken off the topic around the
   * publish, so the cost of blocks falls only on rooms where one applies.
   */
  private deliver(topic: string, message: DeliveryMessage): void {
    const entry = this.listeners.get(topic);
    if (!entry) return;
    const counts = entry.counts;
    // Encode first: a payload that cannot be encoded changes nothing (throws before any leave).
    const frames = ENCODINGS.map((encoding, i) => (counts[i] === 0 ? '' : encodeEvent(message.event, [encodeArg(encoding, message.payload)])));
    const skipped = message.sender === undefined ? [] : this.blockersListening(topic, message.sender);
    // Recipients who blocked someone whose content the payload quotes get it without that content.
    const redacted = message.quoted === undefined ? NONE : this.quotedBlockers(topic, message.quoted, skipped);
    const apart = redacted.length === 0 ? skipped : [...skipped, ...redacted];
    for (const socket of apart) socket.leave(entry.name(session(socket).encoding));
    let recipients = 0;
    let bytes = 0;
    try {
      ENCODINGS.forEach((encoding, i) => {
        if (counts[i] === 0) return;
        const frame = frames[i]!;
        const name = entry.name(encoding);
        for (const server of this.servers) server.publish(name, frame);
        const reached = counts[i]! - apart.filter((s) => session(s).encoding === encoding).length;
        recipients += reached;
        bytes += reached * frame.length;
      });
      for (const socket of redacted) {
        socket.emit(message.event, encodeArg(session(socket).encoding, message.redacted));
        recipients++;
      }
    } finally {
      for (const socket of apart) {
        const encoding = session(socket).encoding;
        // Cut while apart (a synchronous slow-consumer cut): onClose did not see this topic.
        if (socket.closed) this.release(entry, encoding);
        else socket.join(entry.name(encoding));
      }
    }
    const appId = topic.slice(0, topic.indexOf('/'));
    if (message.event === 'chat message') this.meter.member(appId, Members.activeRooms, topic.slice(topic.lastIndexOf('/') + 1));
    this.meter.count(appId, Metric.deliveries, recipients);
    this.meter.count(appId, Metric.bytesOut, bytes);
  }

  /** Local sockets on `topic` whose user blocked one of `quoted` (and who still get the event). */
  private quotedBlockers(topic: string, quoted: readonly string[], skipped: readonly RealtimeSocket[]): RealtimeSocket[] {
    const found = new Set<RealtimeSocket>();
    for (const who of quoted) for (const socket of this.blockersListening(topic, who)) if (!skipped.includes(socket)) found.add(socket);
    return [...found];
  }

  /** Local sockets on `topic` whose user blocked `sender`. */
  private blockersListening(topic: string, sender: string): RealtimeSocket[] {
    const appId = topic.slice(0, topic.indexOf('/'));
    const blockers = this.blocks.blockersOf(appId, sender);
    if (!blockers) return [];
    return [...blockers].flatMap((userId) => this.socketsOf(appId, userId).filter((s) => !s.closed && s.topics().has(engineTopic(topic, session(s).encoding))));
  }

  private control(message: ControlMessage): void {
    switch (message.kind) {
      case 'blocks-changed':
        if (this.byUser.get(message.appId)?.has(message.blocker)) {
          this.blocks.set(message.appId, message.blocker, message.blockee, message.blocked);
        }
        return;
      case 'membership': {
        const topic = roomTopic(message.appId, message.roomId);
        for (const userId of message.added) for (const socket of this.socketsOf(message.appId, userId)) this.listen(socket, topic);
        for (const userId of message.removed) for (const socket of this.socketsOf(message.appId, userId)) this.unlisten(socket, topic);
        return;
      }
      case 'room-deleted': {
        const topic = roomTopic(message.appId, message.roomId);
        for (const userId of message.members) for (const socket of this.socketsOf(message.appId, userId)) this.unlisten(socket, topic);
        return;
      }
      case 'tokens-revoked': {
        const hashes = new Set(message.hashes);
        for (const socket of this.socketsOf(message.appId, message.userId)) {
          if (hashes.has(session(socket).actor?.tokenHash ?? '')) this.cut(socket, Errors.invalidToken(), 'token revoked');
        }
        return;
      }
      case 'apps-changed':
        void this.core.apps.rebuildDomainIndex().catch((err) => this.log.warn({ err }, 'could not refresh the domain index'));
        return;
      case 'client-key-revoked':
      case 'app-deleted': {
        if (message.kind === 'app-deleted') void this.core.apps.rebuildDomainIndex().catch(() => undefined);
        const reason = message.kind === 'app-deleted' ? 'application deleted' : 'client key revoked';
        for (const sockets of this.byUser.get(message.appId)?.values() ?? []) {
          for (const socket of [...sockets]) this.cut(socket, Errors.invalidClientKey(), reason);
        }
        return;
      }
    }
  }

  /** Tells the client why, then disconnects. */
  private cut(socket: RealtimeSocket, error: ImError, reason: string): void {
    socket.emit('error', encodeArg(session(socket).encoding, { ...error.toEnvelope(), reason }));
    socket.disconnect(reason);
  }

  private socketsOf(appId: string, userId: string): RealtimeSocket[] {
    return [...(this.byUser.get(appId)?.get(userId) ?? [])];
  }
}

