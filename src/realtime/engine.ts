/**
 * Transport-agnostic Socket.IO v4 server engine (Engine.IO 4 + Socket.IO 5, websocket
 * only, namespace "/" only). Adapters (uws.ts, ws.ts) feed it frames and closes through
 * EngineSocket; it owns the per-connection state machine and a shared heartbeat.
 */
import { randomBytes } from 'node:crypto';
import { checkUpgradeQuery, decodeEio, EIO_PING, openPacketEncoder } from './protocol/engineio.js';
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
  RealtimeSocket,
  TransportLink,
  UpgradeDecision,
  UpgradeRequest,
} from './types.js';

export const DEFAULT_ENGINE_OPTIONS: Readonly<EngineOptions> = {
  pingIntervalMs: 25_000,
  pingTimeoutMs: 20_000,
  maxPayloadBytes: 1_000_000,
  connectTimeoutMs: 45_000,
};

const ACCEPT: UpgradeDecision = { accept: true };
const DRAINING: UpgradeDecision = {
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

export class EngineSocket implements RealtimeSocket {
  state: Record<string, unknown> = {};
  /** Heartbeat round of the last pong (or of the open); read by SocketEngine's sweep. */
  lastPongRound: number;
  readonly openedAt = performance.now();
  private phase: Phase = 'open';
  private readonly topicSet = new Set<string>();
  private deferredCloseReason = '';

  constructor(
    private readonly engine: SocketEngine,
    private readonly link: TransportLink,
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

  /** Adapter entry: one websocket frame arrived. */
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

  /** Adapter entry: the websocket is gone (peer close, error, or `slow consumer`: a backpressure drop). */
  transportClosed(reason = 'transport close'): void {
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
    this.phase = 'closed';
    this.engine.forget(this);
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
      this.phase = 'open'; // the client may retry CONNECT on the same transport
      this.link.send(encodeConnectError({ message: result.message, data: result.data }));
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
  private readonly encodeOpen: (sid: string) => string;
  private draining = false;
  /** Event handlings still running (hooks that returned a promise), awaited by drain(). */
  private readonly eventsInFlight = new Set<Promise<void>>();

  constructor(
    private readonly hooks: EngineHooks,
    options: Partial<EngineOptions> = {},
  ) {
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...options };
    this.encodeOpen = openPacketEncoder(this.options);
  }

  /** Incremented by every ping broadcast; a pong records the round it answers. */
  get heartbeatRound(): number {
    return this.round;
  }

  /** Query checks plus authorizeUpgrade; synchronous when the hook is. Never throws or rejects. */
  decideUpgrade(req: UpgradeRequest): UpgradeDecision | Promise<UpgradeDecision> {
    if (this.draining) return DRAINING;
    const refusal = checkUpgradeQuery(req.query);
    if (refusal) return { accept: false, ...refusal };
    if (!this.hooks.authorizeUpgrade) return ACCEPT;
    try {
      const decision = this.hooks.authorizeUpgrade(req);
      if (!isPromiseLike(decision)) return decision;
      return Promise.resolve(decision).catch((err: unknown) => this.upgradeFailed(err));
    } catch (err) {
      return this.upgradeFailed(err);
    }
  }

  /** Adapter entry: a websocket was accepted. Sends the Engine.IO open packet. */
  open(link: TransportLink, remoteAddress: string, upgradeContext: unknown): EngineSocket {
    const socket = new EngineSocket(this, link, randomBytes(15).toString('base64url'), remoteAddress, upgradeContext, this.round);
    this.sockets.add(socket);
    this.awaitingConnect.add(socket);
    this.armConnectTimer();
    link.send(this.encodeOpen(socket.id));
    if (this.hooks.onOpen) this.guard('onOpen', () => this.hooks.onOpen!(socket));
    return socket;
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
