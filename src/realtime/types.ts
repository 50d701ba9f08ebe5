/** Contract between the Socket.IO engine, its transport adapters and the application. */

export interface UpgradeRequest {
  url: string;
  query: URLSearchParams;
  /** Header names are lower-case; repeated headers are joined with ", ". */
  headers: Record<string, string>;
  remoteAddress: string;
  /** Which stack carries it (for logs): `uws`, `ws`, … */
  transport?: string;
}

export type UpgradeRefusal = { accept: false; status: number; body: string /* JSON text */; headers?: Record<string, string> };
export type UpgradeDecision = { accept: true; context?: unknown } | UpgradeRefusal;

export interface RealtimeSocket {
  /** Engine.IO sid (random, url-safe); also used as the Socket.IO socket id. */
  readonly id: string;
  readonly remoteAddress: string;
  /** Which stack carries it (for logs): `uws`, `ws`, … */
  readonly transport: string;
  /** performance.now() at open, in whole ms (for the session's duration in logs). */
  readonly openedAt: number;
  /** Whatever authorizeUpgrade returned as `context` (the application's per-socket state: the gateway's session). */
  readonly upgradeContext: unknown;
  /** JSON-encodes the event; dropped silently once the socket is closed. */
  emit(event: string, ...args: unknown[]): void;
  /** Sends an already-encoded full frame (e.g. from encodeEvent) as-is. */
  sendRaw(frame: string): void;
  join(topic: string): void;
  leave(topic: string): void;
  topics(): ReadonlySet<string>;
  /** Sends Socket.IO DISCONNECT, then closes the websocket; onClose gets `reason`. */
  disconnect(reason: string): void;
  /** True between an accepted Socket.IO CONNECT and the close. */
  readonly connected: boolean;
  /** True once the socket is closed, whatever closed it. */
  readonly closed: boolean;
  /**
   * Output this node holds for the socket, not yet handed to the kernel (what
   * ROOMCAST_MAX_SOCKET_BUFFER_BYTES bounds); once closed, what it held at the close.
   */
  readonly bufferedBytes: number;
}

export type ConnectResult = { ok: true } | { ok: false; message: string; data?: unknown };

export interface EngineHooks {
  authorizeUpgrade?(req: UpgradeRequest): Promise<UpgradeDecision> | UpgradeDecision;
  /**
   * A Socket.IO CONNECT to "/" arrived (auth = the packet's JSON object or undefined).
   * ok:false answers CONNECT_ERROR {message, data} and keeps the socket open.
   * If the transport closes while this is pending, onClose is deferred until it settles.
   */
  onConnect(socket: RealtimeSocket, auth: unknown): Promise<ConnectResult> | ConnectResult;
  /** May return the handling's promise: a drain waits for those still pending. */
  onEvent(
    socket: RealtimeSocket,
    event: string,
    args: unknown[],
    ack: ((...args: unknown[]) => void) | undefined,
  ): void | Promise<void>;
  /** A websocket was accepted (before any Socket.IO CONNECT); must be cheap. */
  onOpen?(socket: RealtimeSocket): void;
  /** Called exactly once per opened socket, whatever closed it. */
  onClose(socket: RealtimeSocket, reason: string): void;
  /** Every frame a socket sends, by size (usage metering); must be cheap. */
  onFrame?(socket: RealtimeSocket, bytes: number): void;
  /** Headers every refusal of this request carries (CORS, so a browser can read the body). */
  refusalHeaders?(req: UpgradeRequest): Record<string, string>;
  /** Errors thrown (or rejected) by the hooks above; defaults to console.error. */
  onError?(error: unknown, where: string): void;
}

export interface EngineOptions {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
  /** Close sockets that send no Socket.IO CONNECT within this time. */
  connectTimeoutMs: number;
  /** How long a polling session may take to finish its upgrade to WebSocket (engine.io: 10 s). */
  upgradeTimeoutMs: number;
  /** Refused CONNECTs one socket may send before it is closed. */
  maxConnectAttempts: number;
}

/** What a transport adapter gives back. */
export interface RealtimeServer {
  /** Sends one pre-encoded frame to every socket joined to `topic`, on this node. */
  publish(topic: string, frame: string): void;
  socketCount(): number;
  /** Refuses further upgrades and closes the transport of every socket of this adapter (clients reconnect elsewhere). */
  close(): Promise<void>;
}

/** One connection (a websocket, or a long-polling session) as the engine sees it; one per adapter. */
export interface TransportLink {
  /** Which stack this is (for logs): `uws`, `ws`, … */
  readonly transport: string;
  send(frame: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Graceful close (close frame / close packet) or, with `hard`, drop the connection at once. */
  close(hard: boolean): void;
  /** The link now carries a session: it receives the engine's heartbeat pings from here on. */
  joinHeartbeat(): void;
  /** Output accepted and not yet handed to the kernel (the stack's buffer plus any queue of the adapter's own). */
  bufferedBytes(): number;
  /**
   * Polling only: while `upgrading`, polls are answered at once (a noop if nothing is queued) so
   * the client can pause polling and finish its upgrade; `false` when the probe was given up.
   */
  nudge?(upgrading: boolean): void;
  /** Polling only: the session moved to another link; leave every topic and hand back the frames not yet sent. */
  retire?(): string[];
}

/** What the engine hands an adapter for each accepted connection: where its input goes. */
export interface LinkEndpoint {
  /** The Engine.IO sid of the session it serves. */
  readonly id: string;
  receive(frame: string, isBinary: boolean): void;
  /**
   * The connection is gone by the peer's doing (close, error, aborted poll): reason `transport
   * close`. A transport that cuts a socket itself (slow consumer) calls `end` with its reason.
   */
  transportClosed(): void;
  /** Closes the session (gracefully, or at once with `hard`) and reports `reason`. */
  end(reason: string, hard: boolean): void;
  /** A ping of this session is still unanswered (how the transports tell a dead peer from a slow one). */
  readonly owesPong: boolean;
  /** The topics the link is subscribed to on behalf of its session. */
  topics(): ReadonlySet<string>;
}

/** A transport registered with the engine so the heartbeat reaches its sockets. */
export interface HeartbeatTarget {
  /** Sends `frame` to every socket of this transport. */
  broadcast(frame: string): void;
}

/** Output a node holds for its sockets and has not yet handed to the kernel, in bytes. */
export interface SocketBuffers {
  total: number;
  /** What the socket holding the most holds. */
  max: number;
}

/** The close reason of a socket a transport cut because it stopped reading (backpressure limit). */
export const SLOW_CONSUMER = 'slow consumer';
