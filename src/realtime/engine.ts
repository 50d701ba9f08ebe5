/**
 * Transport-agnostic Socket.IO v4 server engine (Engine.IO 4 + Socket.IO 5, namespace "/"
 * only). Adapters (uws.ts, ws.ts for WebSocket, polling.ts for HTTP long-polling) feed it
 * packets and closes through a LinkEndpoint; it owns the per-connection state machine, the
 * polling → WebSocket upgrade and a shared heartbeat.
 */
import { randomBytes } from 'node:crypto';
import {
  checkOpenQuery,
  decodeEio,
  EIO_PING,
  EIO_PROBE_PING,
  EIO_PROBE_PONG,
  EIO_UPGRADE,
  EioError,
  eioRefusal,
  type HttpRefusal,
  openPacketEncoder,
} from './protocol/engineio.js';
import {
  decodeSocketIo,
  encodeAck,
  encodeConnect,
  encodeConnectError,
  encodeDisconnect,
  encodeEvent,
  SioType,
} from './protocol/socketio.js';
import type {
  ConnectResult,
  EngineHooks,
  EngineOptions,
  HeartbeatTarget,
  LinkEndpoint,
  RealtimeSocket,
  TransportLink,
  UpgradeDecision,
  UpgradeRefusal,
  UpgradeRequest,
} from './types.js';

export const DEFAULT_ENGINE_OPTIONS: Readonly<EngineOptions> = {
  pingIntervalMs: 25_000,
  pingTimeoutMs: 20_000,
  maxPayloadBytes: 1_000_000,
  connectTimeoutMs: 45_000,
  upgradeTimeoutMs: 10_000,
  maxConnectAttempts: 3,
};

/** Transports a session may open with; WebSocket also by upgrade from polling. */
export type TransportName = 'websocket' | 'polling';
const EMPTY_TOPICS: ReadonlySet<string> = new Set();

/** The accepted upgrade of an existing polling session (the decision's context). */
class UpgradeTicket {
  constructor(readonly socket: EngineSocket) {}
}

const ACCEPT: UpgradeDecision = { accept: true };
const DRAINING: UpgradeRefusal = {
  accept: false,
  status: 503,
  body: JSON.stringify({ message: 'Server shutting down' }),
};
const UPGRADE_FAILED: UpgradeDecision = {
  accept: false,
  status: 500,
  body: JSON.stringify({ message: 'Internal server error' }),
};

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

type Phase = 'open' | 'connecting' | 'connected' | 'closed';

export class EngineSocket implements RealtimeSocket, LinkEndpoint {
  /** A websocket probing to take over this polling session. */
  upgrading: UpgradeProbe | undefined;
  /** Heartbeat round of the last pong (or of the open); read by SocketEngine's sweep. */
  lastPongRound: number;
  /** Whole milliseconds (rounded up): a fraction would be a boxed heap number on every socket. */
  readonly openedAt = Math.ceil(performance.now());
  private phase: Phase = 'open';
  private readonly topicSet = new Set<string>();
  private deferredCloseReason = '';
  private connectRefusals = 0;
  /** What the link held when the socket closed (read before the close discards it). */
  private bufferedAtClose = 0;

  constructor(
    private readonly engine: SocketEngine,
    private link: TransportLink,
    readonly id: string,
    readonly remoteAddress: string,
    readonly upgradeContext: unknown,
    round: number,
  ) {
    this.lastPongRound = round;
  }

  get transport(): string {
    return this.link.transport;
  }

  get connected(): boolean {
    return this.phase === 'connected';
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  get bufferedBytes(): number {
    return this.closed ? this.bufferedAtClose : this.link.bufferedBytes();
  }

  /** The peer has not answered the latest heartbeat ping (it is gone, or not reading). */
  get owesPong(): boolean {
    return this.lastPongRound < this.engine.heartbeatRound;
  }

  emit(event: string, ...args: unknown[]): void {
    if (!this.closed) this.link.send(encodeEvent(event, args));
  }

  sendRaw(frame: string): void {
    if (!this.closed) this.link.send(frame);
  }

  join(topic: string): void {
    if (this.closed || this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    this.link.subscribe(topic);
  }

  leave(topic: string): void {
    if (this.closed || !this.topicSet.delete(topic)) return;
    this.link.unsubscribe(topic);
  }

  topics(): ReadonlySet<string> {
    return this.topicSet;
  }

  disconnect(reason: string): void {
    if (this.closed) return;
    this.link.send(encodeDisconnect());
    this.end(reason, false);
  }

  /** The client confirmed the upgrade over `next`: the session continues there. */
  completeUpgrade(next: TransportLink): void {
    this.upgrading = undefined;
    this.engine.upgraded(this);
    this.switchLink(next);
  }

  /** Moves the session onto `next`, with its topics and the frames not yet sent. */
  private switchLink(next: TransportLink): void {
    const previous = this.link;
    for (const topic of this.topicSet) {
      previous.unsubscribe(topic);
      next.subscribe(topic);
    }
    const unsent = previous.retire?.() ?? [];
    this.link = next;
    next.joinHeartbeat();
    for (const frame of unsent) next.send(frame);
  }

  /** A probe answered (true) or was given up (false): polls return at once only while probing. */
  nudge(upgrading: boolean): void {
    this.link.nudge?.(upgrading);
  }

  /** Adapter entry: one packet arrived (a websocket frame, or one packet of a polling body). */
  receive(frame: string, isBinary: boolean): void {
    if (this.closed) return;
    this.engine.countFrame(this, frame.length);
    if (isBinary) return this.end('parse error', false);
    const packet = decodeEio(frame);
    if (!packet.ok) return this.end('parse error', false);
    switch (packet.type) {
      case 'pong':
        this.lastPongRound = this.engine.heartbeatRound;
        return;
      case 'message':
        return this.receiveSocketIo(packet.data);
      case 'close':
        return this.end('transport close', false);
      case 'noop':
        return;
      default: // open/ping/upgrade never travel client→server over a websocket-only session
        return this.end('parse error', false);
    }
  }

  /** Adapter entry: the connection is gone by the peer's doing (close, error, aborted poll). */
  transportClosed(): void {
    const reason = 'transport close';
    if (!this.closed && this.markClosed(reason)) this.engine.notifyClose(this, reason);
  }

  /** Closes the websocket (gracefully, or at once with `hard`) and reports `reason`. */
  end(reason: string, hard: boolean): void {
    if (this.closed) return;
    // Mark closed first: uWS runs its close handler synchronously inside link.close().
    const notify = this.markClosed(reason);
    this.link.close(hard);
    if (notify) this.engine.notifyClose(this, reason);
  }

  /** Returns whether onClose may run now; while onConnect is pending it runs after it settles. */
  private markClosed(reason: string): boolean {
    const connecting = this.phase === 'connecting';
    this.bufferedAtClose = this.link.bufferedBytes();
    this.phase = 'closed';
    this.engine.forget(this);
    this.upgrading?.abandon();
    this.deferredCloseReason = reason;
    return !connecting;
  }

  private receiveSocketIo(text: string): void {
    const result = decodeSocketIo(text);
    if (!result.ok) return this.end('parse error', false);
    const packet = result.packet;
    if (packet.nsp !== '/') {
      if (packet.type === SioType.CONNECT) {
        this.link.send(encodeConnectError({ message: 'Invalid namespace' }, packet.nsp));
      }
      return;
    }
    switch (packet.type) {
      case SioType.CONNECT:
        if (this.phase === 'open') {
          this.connect(packet.data).catch((err: unknown) => this.engine.reportError(err, 'connect'));
        }
        return;
      case SioType.DISCONNECT:
        return this.end('client namespace disconnect', false);
      case SioType.EVENT:
        if (this.phase === 'connected') {
          const ack = packet.id === undefined ? undefined : this.ackOnce(packet.id);
          this.engine.dispatchEvent(this, packet.event, packet.args, ack);
        }
        return;
      case SioType.ACK: // the server never asks the client for acks
        return;
      case SioType.CONNECT_ERROR: // only ever sent by servers
        return this.end('parse error', false);
    }
  }

  private async connect(auth: unknown): Promise<void> {
    this.phase = 'connecting';
    const result = await this.engine.authorizeConnect(this, auth);
    if (this.closed) {
      this.engine.notifyClose(this, this.deferredCloseReason);
      return;
    }
    if (result.ok) {
      this.phase = 'connected';
      this.engine.markConnected(this);
      this.link.send(encodeConnect(this.id));
    } else {
      this.phase = 'open'; // the client may retry CONNECT on the same transport, a few times
      this.link.send(encodeConnectError({ message: result.message, data: result.data }));
      if (++this.connectRefusals >= this.engine.options.maxConnectAttempts) this.end('too many connect attempts', false);
    }
  }

  private ackOnce(id: number): (...args: unknown[]) => void {
    let sent = false;
    return (...args) => {
      if (sent) return;
      sent = true;
      this.sendRaw(encodeAck(id, args));
    };
  }
}

export class SocketEngine {
  readonly options: Readonly<EngineOptions>;
  private round = 0;
  private readonly sockets = new Set<EngineSocket>();
  /** Insertion order is open order, so the first entry always has the nearest deadline. */
  private readonly awaitingConnect = new Set<EngineSocket>();
  private connectTimer: NodeJS.Timeout | undefined;
  private readonly heartbeatTargets = new Set<HeartbeatTarget>();
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimers = new Set<NodeJS.Timeout>();
  /** Polling sessions by sid: the only ones a websocket may upgrade (WebSocket sessions pay nothing). */
  private readonly upgradable = new Map<string, EngineSocket>();
  private readonly encodeOpen: Record<TransportName, (sid: string) => string>;
  /** Transports this engine opens sessions on; polling.ts adds 'polling' when attached. */
  private readonly openTransports: TransportName[] = ['websocket'];
  private draining = false;
  /** Event handlings still running (hooks that returned a promise), awaited by drain(). */
  private readonly eventsInFlight = new Set<Promise<void>>();

  constructor(
    private readonly hooks: EngineHooks,
    options: Partial<EngineOptions> = {},
  ) {
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...options };
    this.encodeOpen = {
      websocket: openPacketEncoder(this.options, []),
      polling: openPacketEncoder(this.options, ['websocket']),
    };
  }

  get transports(): readonly TransportName[] {
    return this.openTransports;
  }

  /** A transport adapter announces it can open sessions (polling.ts). */
  allowTransport(name: TransportName): void {
    if (!this.openTransports.includes(name)) this.openTransports.push(name);
  }

  /** Incremented by every ping broadcast; a pong records the round it answers. */
  get heartbeatRound(): number {
    return this.round;
  }

  /**
   * A websocket upgrade request: a new session (query checks, then authorizeUpgrade), or with
   * `sid` the upgrade of a polling session (authorized when it opened). Synchronous when the
   * hook is. Never throws or rejects.
   */
  decideUpgrade(req: UpgradeRequest): UpgradeDecision | Promise<UpgradeDecision> {
    if (this.draining) return { ...DRAINING, headers: this.refusalHeaders(req) };
    const sid = req.query.get('sid');
    if (sid !== null) return this.decideSessionUpgrade(req, sid);
    const refusal = checkOpenQuery(req.query, 'upgrade', this.transports);
    if (refusal) return this.refuse(req, refusal);
    return this.authorizeOpen(req);
  }

  /** The application's verdict on a new session (either transport). Never throws or rejects. */
  authorizeOpen(req: UpgradeRequest): UpgradeDecision | Promise<UpgradeDecision> {
    if (this.draining) return { ...DRAINING, headers: this.refusalHeaders(req) };
    if (!this.hooks.authorizeUpgrade) return ACCEPT;
    const withHeaders = (decision: UpgradeDecision): UpgradeDecision =>
      decision.accept ? decision : { ...decision, headers: { ...this.refusalHeaders(req), ...decision.headers } };
    try {
      const decision = this.hooks.authorizeUpgrade(req);
      if (!isPromiseLike(decision)) return withHeaders(decision);
      return Promise.resolve(decision).then(withHeaders, (err: unknown) => withHeaders(this.upgradeFailed(err)));
    } catch (err) {
      return withHeaders(this.upgradeFailed(err));
    }
  }

  /** An Engine.IO refusal carrying the headers the application wants on every refusal (CORS). */
  refuse(req: UpgradeRequest, refusal: HttpRefusal): UpgradeRefusal {
    return { accept: false, ...refusal, headers: this.refusalHeaders(req) };
  }

  private refusalHeaders(req: UpgradeRequest): Record<string, string> {
    if (!this.hooks.refusalHeaders) return {};
    try {
      return this.hooks.refusalHeaders(req);
    } catch (err) {
      this.reportError(err, 'refusalHeaders');
      return {};
    }
  }

  private decideSessionUpgrade(req: UpgradeRequest, sid: string): UpgradeDecision {
    const socket = this.upgradable.get(sid);
    if (!socket) return this.refuse(req, eioRefusal(EioError.UNKNOWN_SID));
    if (req.query.get('transport') !== 'websocket' || req.query.get('EIO') !== '4' || socket.upgrading) {
      return this.refuse(req, eioRefusal(EioError.BAD_REQUEST));
    }
    return { accept: true, context: new UpgradeTicket(socket) };
  }

  /**
   * Adapter entry: a connection was accepted. A new session gets the Engine.IO open packet;
   * an upgrade gets a probe that takes the session over once the client confirms.
   */
  open(link: TransportLink, remoteAddress: string, upgradeContext: unknown, transport: TransportName = 'websocket'): LinkEndpoint {
    if (upgradeContext instanceof UpgradeTicket) return this.probe(upgradeContext.socket, link);
    const socket = new EngineSocket(this, link, randomBytes(15).toString('base64url'), remoteAddress, upgradeContext, this.round);
    this.sockets.add(socket);
    this.awaitingConnect.add(socket);
    if (transport === 'polling') this.upgradable.set(socket.id, socket);
    this.armConnectTimer();
    link.joinHeartbeat();
    link.send(this.encodeOpen[transport](socket.id));
    if (this.hooks.onOpen) this.guard('onOpen', () => this.hooks.onOpen!(socket));
    return socket;
  }

  private probe(socket: EngineSocket, link: TransportLink): LinkEndpoint {
    const probe = new UpgradeProbe(socket, link, this.options.upgradeTimeoutMs);
    // Raced by another probe, or the session closed while this one was being accepted.
    if (socket.closed || socket.upgrading || !this.upgradable.has(socket.id)) probe.abandon();
    else socket.upgrading = probe;
    return probe;
  }

  /** The session now runs over WebSocket: it cannot be upgraded again. */
  upgraded(socket: EngineSocket): void {
    this.upgradable.delete(socket.id);
  }

  /**
   * Graceful drain: refuses new sessions, then closes every socket's transport spread evenly
   * over `windowMs`. No Socket.IO DISCONNECT is sent: clients read a transport close as a
   * lost connection and reconnect (elsewhere), where DISCONNECT would stop them for good.
   * Resolves once every socket has been closed and the events they sent have been handled
   * (a message being stored when its socket closed is counted before usage is flushed).
   */
  async drain(windowMs: number): Promise<void> {
    await this.closeSpread(windowMs);
    while (this.eventsInFlight.size > 0) await Promise.all([...this.eventsInFlight]);
  }

  private closeSpread(windowMs: number): Promise<void> {
    this.draining = true;
    const queue = [...this.sockets];
    const start = performance.now();
    let done = 0;
    return new Promise((resolve) => {
      const tick = () => {
        const elapsed = performance.now() - start;
        const due = windowMs <= 0 ? queue.length : Math.min(queue.length, Math.ceil((queue.length * elapsed) / windowMs));
        while (done < due) queue[done++]!.end('server draining', false);
        if (done >= queue.length) return resolve();
        setTimeout(tick, Math.max(1, Math.min(50, windowMs / queue.length)));
      };
      tick();
    });
  }

  /**
   * Registers a transport for the shared heartbeat: one interval per engine pings every
   * target, and one sweep per ping closes sockets that did not pong within pingTimeout.
   * Returns the unregister function.
   */
  addHeartbeatTarget(target: HeartbeatTarget): () => void {
    this.heartbeatTargets.add(target);
    this.pingTimer ??= setInterval(() => this.pingAll(), this.options.pingIntervalMs).unref();
    return () => {
      this.heartbeatTargets.delete(target);
      if (this.heartbeatTargets.size > 0 || !this.pingTimer) return;
      clearInterval(this.pingTimer);
      this.pingTimer = undefined;
      for (const timer of this.sweepTimers) clearTimeout(timer);
      this.sweepTimers.clear();
    };
  }

  reportError(error: unknown, where: string): void {
    try {
      if (this.hooks.onError) this.hooks.onError(error, where);
      else console.error(`[realtime] ${where} failed:`, error);
    } catch {
      // A throwing error reporter has nowhere left to report to.
    }
  }

  // ---- called by EngineSocket ----

  async authorizeConnect(socket: EngineSocket, auth: unknown): Promise<ConnectResult> {
    try {
      return await this.hooks.onConnect(socket, auth);
    } catch (err) {
      this.reportError(err, 'onConnect');
      return { ok: false, message: 'Internal server error' };
    }
  }

  dispatchEvent(
    socket: EngineSocket,
    event: string,
    args: unknown[],
    ack: ((...args: unknown[]) => void) | undefined,
  ): void {
    const pending = this.guard('onEvent', () => this.hooks.onEvent(socket, event, args, ack));
    if (pending) {
      this.eventsInFlight.add(pending);
      void pending.then(() => this.eventsInFlight.delete(pending));
    }
  }

  notifyClose(socket: EngineSocket, reason: string): void {
    this.guard('onClose', () => this.hooks.onClose(socket, reason));
  }

  countFrame(socket: EngineSocket, bytes: number): void {
    if (this.hooks.onFrame) this.guard('onFrame', () => this.hooks.onFrame!(socket, bytes));
  }

  markConnected(socket: EngineSocket): void {
    this.awaitingConnect.delete(socket);
  }

  forget(socket: EngineSocket): void {
    this.sockets.delete(socket);
    this.upgradable.delete(socket.id);
    this.awaitingConnect.delete(socket);
  }

  // ---- internals ----

  /** Runs a hook so that neither a throw nor a rejected promise escapes into a transport callback. */
  /** Returns a never-rejecting promise when the hook returned one. */
  private guard(where: string, run: () => unknown): Promise<void> | undefined {
    try {
      const result = run();
      if (isPromiseLike(result)) return Promise.resolve(result).then(() => undefined, (err: unknown) => this.reportError(err, where));
    } catch (err) {
      this.reportError(err, where);
    }
    return undefined;
  }

  private upgradeFailed(err: unknown): UpgradeDecision {
    this.reportError(err, 'authorizeUpgrade');
    return UPGRADE_FAILED;
  }

  private pingAll(): void {
    const round = ++this.round;
    for (const target of this.heartbeatTargets) {
      try {
        target.broadcast(EIO_PING);
      } catch (err) {
        this.reportError(err, 'heartbeat');
      }
    }
    const sweep = setTimeout(() => {
      this.sweepTimers.delete(sweep);
      for (const socket of this.sockets) {
        if (socket.lastPongRound < round) socket.end('ping timeout', true);
      }
    }, this.options.pingTimeoutMs).unref();
    this.sweepTimers.add(sweep);
  }

  /** One timer per engine for all pending CONNECT deadlines, aimed at the oldest socket. */
  private armConnectTimer(): void {
    if (this.connectTimer || this.awaitingConnect.size === 0) return;
    const [oldest] = this.awaitingConnect;
    const delay = Math.max(1, oldest!.openedAt + this.options.connectTimeoutMs - performance.now());
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      const now = performance.now();
      for (const socket of this.awaitingConnect) {
        if (socket.openedAt + this.options.connectTimeoutMs > now) break;
        socket.end('connect timeout', false);
      }
      this.armConnectTimer();
    }, delay).unref();
  }
}

/**
 * A websocket opened with the sid of a polling session (engine.io's upgrade): answers
 * `2probe` with `3probe`, makes the session's waiting poll return, and on `5` moves the session
 * onto the websocket. Anything else, or no `5` within the upgrade timeout, closes the probe and
 * leaves the session on polling.
 */
class UpgradeProbe implements LinkEndpoint {
  private upgraded = false;
  private done = false;
  /** `2probe` was answered: the session's polls are being cut short until the upgrade ends. */
  private probed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: EngineSocket,
    private readonly link: TransportLink,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.abandon(), timeoutMs).unref();
  }

  get id(): string {
    return this.socket.id;
  }

  receive(frame: string, isBinary: boolean): void {
    if (this.upgraded) return this.socket.receive(frame, isBinary);
    if (this.done) return;
    if (frame === EIO_PROBE_PING && !isBinary) {
      this.link.send(EIO_PROBE_PONG);
      this.probed = true;
      this.socket.nudge(true);
      return;
    }
    if (frame === EIO_UPGRADE && !isBinary && !this.socket.closed) {
      clearTimeout(this.timer);
      this.upgraded = true;
      this.socket.completeUpgrade(this.link);
      return;
    }
    this.abandon();
  }

  transportClosed(): void {
    if (this.upgraded) return this.socket.transportClosed();
    this.release();
  }

  end(reason: string, hard: boolean): void {
    if (this.upgraded) this.socket.end(reason, hard);
    else this.abandon();
  }

  /** Only the session's own link answers pings until the upgrade is done. */
  get owesPong(): boolean {
    return this.upgraded && this.socket.owesPong;
  }

  topics(): ReadonlySet<string> {
    return this.upgraded ? this.socket.topics() : EMPTY_TOPICS;
  }

  /** Gives up on this upgrade; the session stays on polling. */
  abandon(): void {
    if (this.upgraded || this.done) return;
    this.release();
    this.link.close(false);
  }

  private release(): void {
    this.done = true;
    clearTimeout(this.timer);
    if (this.socket.upgrading !== this) return;
    this.socket.upgrading = undefined;
    if (this.probed && !this.socket.closed) this.socket.nudge(false); // polls wait again
  }
}
