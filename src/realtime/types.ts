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

export type UpgradeDecision =
  | { accept: true; context?: unknown }
  | { accept: false; status: number; body: string /* JSON text */ };

export interface RealtimeSocket {
  /** Engine.IO sid (random, url-safe); also used as the Socket.IO socket id. */
  readonly id: string;
  readonly remoteAddress: string;
  /** Which stack carries it (for logs): `uws`, `ws`, … */
  readonly transport: string;
  /** performance.now() at open (for the session's duration in logs). */
  readonly openedAt: number;
  /** Whatever authorizeUpgrade returned as `context`. */
  readonly upgradeContext: unknown;
  /** Free for the application. */
  state: Record<string, unknown>;
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
  /** Errors thrown (or rejected) by the hooks above; defaults to console.error. */
  onError?(error: unknown, where: string): void;
}

export interface EngineOptions {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
  /** Close sockets that send no Socket.IO CONNECT within this time. */
  connectTimeoutMs: number;
}

/** What a transport adapter gives back. */
export interface RealtimeServer {
  /** Sends one pre-encoded frame to every socket joined to `topic`, on this node. */
  publish(topic: string, frame: string): void;
  socketCount(): number;
  /** Refuses further upgrades and closes the transport of every socket of this adapter (clients reconnect elsewhere). */
  close(): Promise<void>;
}

/** One open websocket as the engine sees it; implemented by each adapter. */
export interface TransportLink {
  /** Which stack this is (for logs): `uws`, `ws`, … */
  readonly transport: string;
  send(frame: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Graceful close (close frame) or, with `hard`, drop the connection at once. */
  close(hard: boolean): void;
}

/** A transport registered with the engine so the heartbeat reaches its sockets. */
export interface HeartbeatTarget {
  /** Sends `frame` to every socket of this transport. */
  broadcast(frame: string): void;
}

/** The close reason of a socket a transport cut because it stopped reading (backpressure limit). */
export const SLOW_CONSUMER = 'slow consumer';
