/**
 * Engine.IO HTTP long-polling transport, served through the HTTP adapters (uWS or node:http):
 * GET waits for the session's queued packets, POST delivers the client's. Sessions start here
 * when a client uses its default transports, then usually upgrade to WebSocket (engine.ts).
 *
 * WebSocket sessions pay nothing for this module: one map lookup per published topic (empty
 * unless a polling session listens) and nothing per connection.
 */
import type { HttpRequest, HttpResponse } from '../http/types.js';
import type { SocketEngine } from './engine.js';
import {
  checkOpenQuery,
  decodePayload,
  EIO_CLOSE,
  EIO_NOOP,
  EioError,
  eioRefusal,
  encodePayload,
  type HttpRefusal,
} from './protocol/engineio.js';
import { type LinkEndpoint, type RealtimeServer, SLOW_CONSUMER, type TransportLink, type UpgradeDecision, type UpgradeRefusal, type UpgradeRequest } from './types.js';

export interface PollingOptions {
  /** How long a closed session keeps its last packets (and the close packet) for a client that is between polls. */
  closeTimeoutMs?: number;
  /**
   * A session whose queued, unpolled output exceeds this is cut (reason `slow consumer`), as a
   * WebSocket that stops reading is. Default 1 MiB; the server passes ROOMCAST_MAX_SOCKET_BUFFER_BYTES.
   */
  maxBufferedBytes?: number;
}

/** Polling answers with text/plain (engine.io); never cached by a proxy. */
const POLL_HEADERS = { 'content-type': 'text/plain; charset=UTF-8', 'cache-control': 'no-store' };
/** engine.io answers a delivered POST with "ok" as text/html. */
const POSTED: HttpResponse = { status: 200, headers: { 'content-type': 'text/html', 'cache-control': 'no-store' }, body: 'ok' };

type Respond = (res: HttpResponse) => void;

interface PollingHub {
  readonly topics: Map<string, Set<PollingLink>>;
  readonly beating: Set<PollingLink>;
  readonly sessions: Map<string, PollingLink>;
  /** Sessions neither closing nor upgraded away. */
  readonly live: Set<PollingLink>;
  readonly closeTimeoutMs: number;
  readonly maxBufferedBytes: number;
  schedule(link: PollingLink): void;
}

class PollingLink implements TransportLink {
  readonly transport = 'polling';
  endpoint: LinkEndpoint | undefined;
  sid = '';
  private queue: string[] = [];
  /** Characters queued (a cheap bound on bytes: frames are mostly ASCII JSON). */
  private queued = 0;
  /** The GET waiting for packets, if any. */
  private waiting: Respond | undefined;
  /** An upgrade probe succeeded: polls return at once so the client can pause polling. */
  private upgrading = false;
  private closing = false;
  private retired = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly joined = new Set<string>();

  constructor(private readonly hub: PollingHub) {}

  send(frame: string): void {
    if (this.retired || this.closing) return;
    if (this.queued + frame.length > this.hub.maxBufferedBytes) {
      // The client stopped polling while output piled up: cut it, like a websocket that stops reading.
      this.endpoint?.end(SLOW_CONSUMER, true);
      return;
    }
    this.queue.push(frame);
    this.queued += frame.length;
    if (this.waiting) this.hub.schedule(this);
  }

  subscribe(topic: string): void {
    if (this.retired || this.closing) return;
    this.joined.add(topic);
    let members = this.hub.topics.get(topic);
    if (!members) this.hub.topics.set(topic, (members = new Set()));
    members.add(this);
  }

  unsubscribe(topic: string): void {
    this.joined.delete(topic);
    const members = this.hub.topics.get(topic);
    if (!members?.delete(this)) return;
    if (members.size === 0) this.hub.topics.delete(topic);
  }

  joinHeartbeat(): void {
    this.hub.beating.add(this);
  }

  /** The queue no poll has taken yet (counted in characters, as the limit is). */
  bufferedBytes(): number {
    return this.queued;
  }

  nudge(upgrading: boolean): void {
    this.upgrading = upgrading;
    if (!upgrading) return;
    if (this.waiting && this.queue.length === 0) this.queue.push(EIO_NOOP);
    this.flush();
  }

  /**
   * The session is closing: its last packets and the close packet go out with the next poll.
   * A hard close (ping timeout, slow consumer) drops what was queued: only the close packet is left.
   */
  close(hard: boolean): void {
    if (this.closing || this.retired) return;
    this.leaveAll();
    this.closing = true;
    if (hard) {
      this.queue = [];
      this.queued = 0;
    }
    if (this.queue.length === 0) this.queue.push(EIO_CLOSE);
    this.closeTimer = setTimeout(() => this.forget(), this.hub.closeTimeoutMs).unref();
    this.flush();
  }

  retire(): string[] {
    this.retired = true;
    this.leaveAll();
    const unsent = this.queue.splice(0);
    this.queued = 0;
    // A poll still waiting (the client should have paused) gets a noop rather than a hang.
    this.answer({ status: 200, headers: { ...POLL_HEADERS }, body: EIO_NOOP });
    this.forget();
    return unsent;
  }

  /** GET: answer now if packets are queued, else when some are. */
  poll(req: HttpRequest): HttpResponse | Promise<HttpResponse> {
    if (this.waiting) {
      // engine.io: overlapping polls are a client error that closes the session.
      this.endpoint?.transportClosed();
      this.close(true);
      return eioResponse(eioRefusal(EioError.BAD_REQUEST));
    }
    if (this.queue.length === 0 && this.upgrading) this.queue.push(EIO_NOOP);
    if (this.queue.length > 0) return this.take();
    return new Promise<HttpResponse>((resolve) => {
      this.waiting = resolve;
      req.onAborted?.(() => {
        if (this.waiting !== resolve) return;
        this.waiting = undefined;
        // The client went away mid-poll: engine.io closes the session ("poll connection closed prematurely").
        if (!this.closing && !this.retired) this.endpoint?.transportClosed();
        this.close(true);
        this.forget();
      });
    });
  }

  /** POST: every packet of the body, in order. */
  post(req: HttpRequest, maxPayloadBytes: number): HttpResponse {
    if (this.closing || this.retired) return POSTED;
    if (req.headers['content-type']?.startsWith('application/octet-stream')) {
      this.fail();
      return eioResponse(eioRefusal(EioError.BAD_REQUEST));
    }
    if (req.body.length > maxPayloadBytes) {
      this.fail();
      return { status: 413, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: EioError.BAD_REQUEST, message: 'Payload too large' }) };
    }
    for (const packet of decodePayload(req.body.toString('utf8'))) {
      if (this.closing || this.retired) break;
      if (packet === EIO_CLOSE) this.closedByClient();
      // `b<base64>` is a binary packet, which this server does not accept (the engine closes on it).
      this.endpoint?.receive(packet, packet.charCodeAt(0) === 98 /* b */);
    }
    return POSTED;
  }

  get holdingPoll(): boolean {
    return this.waiting !== undefined;
  }

  /** Sends what is queued to the waiting GET. */
  flush(): void {
    if (!this.waiting || this.queue.length === 0) return;
    this.answer(this.take());
  }

  private take(): HttpResponse {
    const frames = this.queue.splice(0);
    this.queued = 0;
    if (this.closing) {
      if (frames[frames.length - 1] === EIO_CLOSE) this.forget();
      // The close packet goes alone in the next poll, as engine.io does: socket.io-client handles
      // decoded packets a tick late, so a DISCONNECT sharing a body with it would be lost.
      else this.queue.push(EIO_CLOSE);
    }
    return { status: 200, headers: { ...POLL_HEADERS }, body: encodePayload(frames) };
  }

  private answer(res: HttpResponse): void {
    const respond = this.waiting;
    this.waiting = undefined;
    respond?.(res);
  }

  /** The client sent the close packet: a waiting poll is answered with a noop (engine.io), nothing more is sent. */
  private closedByClient(): void {
    this.leaveAll();
    this.closing = true;
    this.queue = [];
    this.queued = 0;
    this.answer({ status: 200, headers: { ...POLL_HEADERS }, body: EIO_NOOP });
    this.forget();
  }

  private fail(): void {
    this.endpoint?.transportClosed();
    this.close(true);
  }

  private leaveAll(): void {
    this.hub.live.delete(this);
    this.hub.beating.delete(this);
    for (const topic of [...this.joined]) this.unsubscribe(topic);
  }

  private forget(): void {
    clearTimeout(this.closeTimer);
    if (this.hub.sessions.get(this.sid) === this) this.hub.sessions.delete(this.sid);
  }
}

function eioResponse(refusal: HttpRefusal): HttpResponse {
  return { status: refusal.status, headers: { 'content-type': 'application/json' }, body: refusal.body };
}

function refusalResponse(decision: UpgradeRefusal): HttpResponse {
  return { status: decision.status, headers: { 'content-type': 'application/json', ...decision.headers }, body: decision.body };
}

const SHUTTING_DOWN: HttpResponse = {
  status: 503,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ message: 'Server shutting down' }),
};

/** With polling switched off (ROOMCAST_POLLING=false), the Engine.IO path answers engine.io's "Transport unknown". */
export const POLLING_OFF = {
  handle: (): HttpResponse => eioResponse(eioRefusal(EioError.UNKNOWN_TRANSPORT)),
};

export interface PollingServer extends RealtimeServer {
  /** Answers one HTTP request on the Engine.IO path. */
  handle(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
  /** How many sessions hold a client's poll open right now (diagnostics; O(sessions)). */
  heldPolls(): number;
}

/** Adds long-polling to the engine; the returned server's `handle` serves the HTTP side. */
export function attachPolling(engine: SocketEngine, opts: PollingOptions = {}): PollingServer {
  const pending = new Set<PollingLink>();
  let scheduled = false;
  const hub: PollingHub = {
    topics: new Map(),
    beating: new Set(),
    sessions: new Map(),
    live: new Set(),
    closeTimeoutMs: opts.closeTimeoutMs ?? 30_000,
    maxBufferedBytes: opts.maxBufferedBytes ?? 1024 * 1024,
    // Frames sent within one event-loop turn leave in one response.
    schedule(link) {
      pending.add(link);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        for (const next of [...pending]) next.flush();
        pending.clear();
      });
    },
  };
  let closed = false;
  engine.allowTransport('polling');
  const stopHeartbeat = engine.addHeartbeatTarget({
    broadcast: (frame) => {
      for (const link of hub.beating) link.send(frame);
    },
  });

  const open = (req: HttpRequest, request: UpgradeRequest, decision: UpgradeDecision): HttpResponse | Promise<HttpResponse> => {
    if (!decision.accept) return refusalResponse(decision);
    if (closed) return SHUTTING_DOWN;
    const link = new PollingLink(hub);
    const endpoint = engine.open(link, request.remoteAddress, decision.context, 'polling');
    link.endpoint = endpoint;
    link.sid = endpoint.id;
    hub.sessions.set(link.sid, link);
    hub.live.add(link);
    return link.poll(req);
  };

  const handle = (req: HttpRequest): HttpResponse | Promise<HttpResponse> => {
    const sid = req.query.get('sid');
    const request: UpgradeRequest = {
      transport: 'polling',
      url: req.path,
      query: req.query,
      headers: req.headers,
      remoteAddress: req.remoteAddress,
    };
    const refuse = (refusal: HttpRefusal) => refusalResponse(engine.refuse(request, refusal));
    if (sid === null) {
      const refusal = checkOpenQuery(req.query, 'http', engine.transports, req.method);
      if (refusal) return refuse(refusal);
      if (closed) return SHUTTING_DOWN;
      const decision = engine.authorizeOpen(request);
      return decision instanceof Promise ? decision.then((d) => open(req, request, d)) : open(req, request, decision);
    }
    const transport = req.query.get('transport');
    if (transport !== 'polling' && transport !== 'websocket') return refuse(eioRefusal(EioError.UNKNOWN_TRANSPORT));
    const link = hub.sessions.get(sid);
    if (!link) return refuse(eioRefusal(EioError.UNKNOWN_SID));
    if (transport !== 'polling' || req.query.get('EIO') !== '4') return refuse(eioRefusal(EioError.BAD_REQUEST));
    if (req.method === 'GET') return link.poll(req);
    if (req.method === 'POST') return link.post(req, engine.options.maxPayloadBytes);
    return refuse(eioRefusal(EioError.BAD_REQUEST));
  };

  return {
    handle,
    publish: (topic, frame) => {
      const members = hub.topics.get(topic);
      if (members) for (const link of members) link.send(frame);
    },
    socketCount: () => hub.live.size,
    heldPolls: () => [...hub.sessions.values()].filter((link) => link.holdingPoll).length,
    close: async () => {
      if (closed) return;
      closed = true;
      stopHeartbeat();
      for (const link of [...hub.live]) link.endpoint?.end('server shutting down', false);
    },
  };
}
