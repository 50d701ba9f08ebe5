/**
 * uWebSockets.js transport: topics and fan-out are uWS native pub/sub, and the heartbeat
 * is a single native publish to a topic every socket joins.
 */
import { STATUS_CODES } from 'node:http';
import type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_socket_context_t,
  WebSocket,
} from '@trufflesuite/uws-js-unofficial';
import type { SocketEngine } from './engine.js';
import { type LinkEndpoint, type RealtimeServer, SLOW_CONSUMER, type TransportLink, type UpgradeDecision, type UpgradeRequest } from './types.js';

export interface UwsAttachOptions {
  /**
   * A socket whose unsent output exceeds this once a turn's frames are sent is cut (reason
   * `slow consumer`, see BacklogCheck). Default 1 MiB; the server passes ROOMCAST_MAX_SOCKET_BUFFER_BYTES.
   */
  maxBackpressureBytes?: number;
}

/**
 * The buffer limit is enforced here, not by uWS: uWS cuts a socket over its `maxBackpressure`
 * from its own loop hook (where small published frames are sent) and reports it as an abrupt
 * close (1006), the same as a peer that vanished, with the socket no longer readable. So uWS
 * is given no limit, and every socket written to in a turn has its buffer checked once uWS has
 * sent that turn's frames (two setImmediate hops: after its next loop hook). A socket over the
 * limit is cut there with its exact figure; it holds at most the limit plus one turn's frames.
 */
class BacklogCheck {
  private links = new Set<UwsLink>();
  private topics = new Set<string>();
  private everyone = false;
  private scheduled = false;

  constructor(
    private readonly hub: Pick<UwsHub, 'topics' | 'links'>,
    private readonly limit: number,
  ) {}

  link(link: UwsLink): void {
    this.links.add(link);
    this.schedule();
  }

  topic(topic: string): void {
    if (!this.hub.topics.has(topic)) return;
    this.topics.add(topic);
    this.schedule();
  }

  /** The heartbeat reaches every socket: all are checked. */
  all(): void {
    this.everyone = true;
    this.schedule();
  }

  /**
   * Takes this turn's writes at the first hop and checks at the second; whatever is written in
   * between waits for the next round. Members are read at the check, without copying: a socket
   * in two of the topics is read twice, which costs less than building a set of them.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const { links, topics, everyone } = this;
      this.links = new Set();
      this.topics = new Set();
      this.everyone = false;
      setImmediate(() => {
        const limit = this.limit;
        for (const link of everyone ? this.hub.links : links) link.checkBacklog(limit);
        if (everyone) return;
        for (const topic of topics) {
          const members = this.hub.topics.get(topic);
          if (members) for (const link of members) link.checkBacklog(limit);
        }
      });
    });
  }
}

interface UwsHub {
  /** Topic → the links subscribed to it (uWS keeps its own copy for the native fan-out). */
  readonly topics: Map<string, Set<UwsLink>>;
  readonly links: Set<UwsLink>;
  readonly check: BacklogCheck;
}

/** NUL-prefixed so it cannot clash with application topic names. */
const HEARTBEAT_TOPIC = '\u0000eio:heartbeat';
const SHUTTING_DOWN: UpgradeDecision = {
  accept: false,
  status: 503,
  body: JSON.stringify({ message: 'Server shutting down' }),
};

/**
 * uWS copies the user data's properties onto its websocket object, which has no room for them
 * in itself: the fewer, the smaller each socket. What the upgrade decided is dropped at open.
 */
interface SocketData {
  remoteAddress: string;
  context: unknown;
  link: UwsLink | undefined;
}

class UwsLink implements TransportLink {
  /** The engine's side: where input goes (set once the engine accepted the connection). */
  endpoint: LinkEndpoint | undefined = undefined;
  /** uWS invalidates the websocket before its close handler runs: nothing may touch it after. */
  private gone = false;
  /** The buffer as last read (what bufferedBytes reports once the websocket is gone). */
  private lastBuffered = 0;

  constructor(
    private readonly ws: WebSocket<SocketData>,
    private readonly hub: UwsHub,
  ) {
    hub.links.add(this);
  }

  get transport(): string {
    return 'uws';
  }

  send(frame: string): void {
    if (this.gone) return;
    this.ws.send(frame, false);
    this.hub.check.link(this);
  }

  subscribe(topic: string): void {
    if (this.gone) return;
    this.ws.subscribe(topic);
    let members = this.hub.topics.get(topic);
    if (!members) this.hub.topics.set(topic, (members = new Set()));
    members.add(this);
  }

  unsubscribe(topic: string): void {
    if (this.gone) return;
    this.ws.unsubscribe(topic);
    this.leave(topic);
  }

  close(hard: boolean): void {
    if (this.gone) return;
    if (hard) this.ws.close();
    else this.ws.end(1000);
  }

  joinHeartbeat(): void {
    if (!this.gone) this.ws.subscribe(HEARTBEAT_TOPIC);
  }

  bufferedBytes(): number {
    if (!this.gone) this.lastBuffered = this.ws.getBufferedAmount();
    return this.lastBuffered;
  }

  /** Cuts the socket if the peer left more than `limit` unread (see BacklogCheck). */
  checkBacklog(limit: number): void {
    if (this.gone || this.bufferedBytes() <= limit) return;
    const endpoint = this.endpoint;
    if (endpoint) endpoint.end(SLOW_CONSUMER, true);
    else this.close(true);
  }

  /** The websocket closed: forget it (uWS already dropped its subscriptions; the session knows its topics). */
  detach(): void {
    this.gone = true;
    this.hub.links.delete(this);
    const endpoint = this.endpoint;
    if (endpoint) for (const topic of endpoint.topics()) this.leave(topic);
  }

  private leave(topic: string): void {
    const members = this.hub.topics.get(topic);
    if (!members?.delete(this)) return;
    if (members.size === 0) this.hub.topics.delete(topic);
  }
}

function writeJson(res: HttpResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`).writeHeader('content-type', 'application/json');
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  res.end(body);
}

/**
 * Consecutive connections from one address (behind a proxy or NAT: every connection) share
 * one string instead of each socket keeping its own copy.
 */
let lastAddress = '';
function sameAddress(address: string): string {
  if (address === lastAddress) return lastAddress;
  lastAddress = address;
  return address;
}

export function attachUws(app: TemplatedApp, engine: SocketEngine, opts: UwsAttachOptions = {}): RealtimeServer {
  let closed = false;
  const membership = { topics: new Map<string, Set<UwsLink>>(), links: new Set<UwsLink>() };
  const hub: UwsHub = { ...membership, check: new BacklogCheck(membership, opts.maxBackpressureBytes ?? 1024 * 1024) };
  const stopHeartbeat = engine.addHeartbeatTarget({
    broadcast: (frame) => {
      app.publish(HEARTBEAT_TOPIC, frame, false);
      hub.check.all();
    },
  });

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // req is stack-allocated by uWS: copy everything before any await.
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    });
    const rawQuery = req.getQuery() ?? '';
    const request: UpgradeRequest = {
      url: rawQuery ? `${req.getUrl()}?${rawQuery}` : req.getUrl(),
      query: new URLSearchParams(rawQuery),
      headers,
      remoteAddress: sameAddress(Buffer.from(res.getRemoteAddressAsText()).toString()),
      transport: 'uws',
    };
    const respond = (decision: UpgradeDecision): void => {
      if (!decision.accept) return writeJson(res, decision.status, decision.body, decision.headers);
      const data: SocketData = { remoteAddress: request.remoteAddress, context: decision.context, link: undefined };
      res.upgrade(
        data,
        headers['sec-websocket-key'] ?? '',
        headers['sec-websocket-protocol'] ?? '',
        headers['sec-websocket-extensions'] ?? '',
        context,
      );
    };

    const decision = closed ? SHUTTING_DOWN : engine.decideUpgrade(request);
    if (!(decision instanceof Promise)) return respond(decision);
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    decision
      .then((settled) => {
        if (!aborted) res.cork(() => respond(closed ? SHUTTING_DOWN : settled));
      })
      .catch((err: unknown) => engine.reportError(err, 'upgrade'));
  }

  app.ws<SocketData>('/socket.io/*', {
    maxPayloadLength: engine.options.maxPayloadBytes,
    idleTimeout: 0, // the Engine.IO heartbeat detects dead peers
    sendPingsAutomatically: false,
    maxBackpressure: 0, // no limit of uWS's own: BacklogCheck enforces ours
    closeOnBackpressureLimit: 0,
    upgrade,
    open: (ws) => {
      try {
        const data = ws.getUserData();
        const link = (data.link = new UwsLink(ws, hub));
        const { remoteAddress, context } = data;
        data.remoteAddress = '';
        data.context = undefined;
        link.endpoint = engine.open(link, remoteAddress, context);
      } catch (err) {
        engine.reportError(err, 'open');
      }
    },
    message: (ws, message, isBinary) => {
      try {
        ws.getUserData().link?.endpoint?.receive(isBinary ? '' : Buffer.from(message).toString('utf8'), isBinary);
      } catch (err) {
        engine.reportError(err, 'message');
      }
    },
    close: (ws) => {
      const link = ws.getUserData().link;
      link?.detach();
      const socket = link?.endpoint;
      if (!socket) return;
      try {
        // uWS has no limit of its own (BacklogCheck cuts through `end`), so a close not asked for is the peer's.
        socket.transportClosed();
      } catch (err) {
        engine.reportError(err, 'close');
      }
    },
  });

  // Plain HTTP on the Engine.IO path (long-polling) falls through to the HTTP routes (polling.ts).

  return {
    publish: (topic, frame) => {
      app.publish(topic, frame, false);
      hub.check.topic(topic);
    },
    socketCount: () => hub.links.size,
    close: async () => {
      if (closed) return;
      closed = true;
      stopHeartbeat();
      for (const link of [...hub.links]) link.endpoint?.end('server shutting down', false);
    },
  };
}
