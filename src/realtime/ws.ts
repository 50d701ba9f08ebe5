/**
 * `ws` transport on a node http.Server. Topics are a JS map; writes are batched per
 * event-loop turn by corking each net socket on its first send and uncorking all of
 * them in one setImmediate.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Errors } from '../core/errors.js';
import type { SocketEngine } from './engine.js';
import { isEngineIoPath } from './protocol/engineio.js';
import { SLOW_CONSUMER } from './types.js';
import type { LinkEndpoint, RealtimeServer, TransportLink, UpgradeDecision, UpgradeRequest } from './types.js';

export interface WsAttachOptions {
  /**
   * A socket still holding more unsent output than this when a new turn writes to it is cut
   * (reason `slow consumer`). Default 1 MiB; the server passes ROOMCAST_MAX_SOCKET_BUFFER_BYTES.
   */
  maxBackpressureBytes?: number;
  /** How long close() waits for clients to finish the close handshake. Default 1 s. */
  closeGraceMs?: number;
}

const SHUTTING_DOWN: UpgradeDecision = {
  accept: false,
  status: 503,
  body: JSON.stringify({ message: 'Server shutting down' }),
};

const NOT_FOUND = JSON.stringify(Errors.notFound('ROUTE', 'websocket upgrade (served at /socket.io/ only)').toEnvelope());

/** Write batching shared by all links of one adapter: one flush per event-loop turn. */
class CorkBatch {
  private readonly corked: WsLink[] = [];
  private scheduled = false;

  add(link: WsLink): void {
    this.corked.push(link);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (const pending of this.corked.splice(0)) pending.uncork();
    });
  }
}

class WsLink implements TransportLink {
  readonly transport = 'ws';
  socket: LinkEndpoint | undefined;
  private readonly raw: Socket;
  private corked = false;
  private detached = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly hub: WsHub,
  ) {
    // ws keeps the net socket private; corking it is the only way to batch frames.
    this.raw = (ws as unknown as { _socket: Socket })._socket;
  }

  send(frame: string): void {
    if (this.detached) return;
    if (!this.corked) {
      // Measured before corking: only output the peer left unread since earlier turns counts,
      // so a large burst within one turn does not drop a fast reader.
      if (this.ws.bufferedAmount > this.hub.maxBackpressure) return this.cutSlowConsumer();
      this.corked = true;
      this.raw.cork();
      this.hub.batch.add(this);
    }
    this.ws.send(frame);
  }

  subscribe(topic: string): void {
    let members = this.hub.topics.get(topic);
    if (!members) this.hub.topics.set(topic, (members = new Set()));
    members.add(this);
  }

  unsubscribe(topic: string): void {
    const members = this.hub.topics.get(topic);
    if (!members?.delete(this)) return;
    if (members.size === 0) this.hub.topics.delete(topic);
  }

  /** The peer stopped reading: drop it, and say why (the gateway logs and meters it). */
  private cutSlowConsumer(): void {
    if (this.socket) this.socket.end(SLOW_CONSUMER, true);
    else this.close(true);
  }

  close(hard: boolean): void {
    this.detach();
    if (hard) this.ws.terminate();
    else this.ws.close(1000);
  }

  joinHeartbeat(): void {
    this.hub.beating.add(this);
  }

  /** ws's figure covers both the net socket's buffer and the frames its sender queues itself. */
  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /** Stops all output and leaves every topic; runs again harmlessly on the 'close' event. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.hub.beating.delete(this);
    if (this.socket) for (const topic of this.socket.topics()) this.unsubscribe(topic);
  }

  uncork(): void {
    this.corked = false;
    this.raw.uncork();
  }
}

interface WsHub {
  readonly topics: Map<string, Set<WsLink>>;
  /** Links carrying a session (not an upgrade probe): the heartbeat's recipients. */
  readonly beating: Set<WsLink>;
  readonly batch: CorkBatch;
  readonly maxBackpressure: number;
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function writeRawRefusal(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
  socket.once('finish', () => socket.destroy());
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Content-Type: application/json\r\n' +
      extra +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

export function attachWs(server: Server, engine: SocketEngine, opts: WsAttachOptions = {}): RealtimeServer {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: engine.options.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const hub: WsHub = {
    topics: new Map(),
    beating: new Set(),
    batch: new CorkBatch(),
    maxBackpressure: opts.maxBackpressureBytes ?? 1024 * 1024,
  };
  const links = new Set<WsLink>();
  let closed = false;
  let allGone: (() => void) | undefined;

  const stopHeartbeat = engine.addHeartbeatTarget({
    broadcast: (frame) => {
      for (const link of hub.beating) link.send(frame);
    },
  });

  function accept(ws: WebSocket, remoteAddress: string, context: unknown): void {
    const link = new WsLink(ws, hub);
    links.add(link);
    const socket = engine.open(link, remoteAddress, context);
    link.socket = socket;
    ws.on('message', (data, isBinary) => {
      try {
        socket.receive(isBinary ? '' : (data as Buffer).toString('utf8'), isBinary);
      } catch (err) {
        engine.reportError(err, 'message');
      }
    });
    ws.on('error', () => undefined); // protocol errors (e.g. oversize frames) are followed by 'close'
    ws.on('close', () => {
      link.detach();
      links.delete(link);
      if (links.size === 0) allGone?.();
      try {
        socket.transportClosed();
      } catch (err) {
        engine.reportError(err, 'close');
      }
    });
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    socket.on('error', () => undefined); // a peer reset while authorizing must not crash the process
    // Any other path is answered and closed: an unanswered upgrade holds its connection forever.
    if (!isEngineIoPath(queryStart === -1 ? url : url.slice(0, queryStart))) return writeRawRefusal(socket, 404, NOT_FOUND);
    const remoteAddress = req.socket.remoteAddress ?? '';
    const request: UpgradeRequest = {
      url,
      query: new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1)),
      headers: headersOf(req),
      remoteAddress,
      transport: 'ws',
    };
    const respond = (decision: UpgradeDecision): void => {
      if (socket.destroyed) return;
      if (!decision.accept) return writeRawRefusal(socket, decision.status, decision.body, decision.headers);
      wss.handleUpgrade(req, socket, head, (ws) => accept(ws, remoteAddress, decision.context));
    };
    const decision = closed ? SHUTTING_DOWN : engine.decideUpgrade(request);
    if (!(decision instanceof Promise)) return respond(decision);
    decision
      .then((settled) => respond(closed ? SHUTTING_DOWN : settled))
      .catch((err: unknown) => {
        engine.reportError(err, 'upgrade');
        socket.destroy();
      });
  }

  server.on('upgrade', onUpgrade);

  return {
    publish: (topic, frame) => {
      const members = hub.topics.get(topic);
      if (members) for (const link of members) link.send(frame);
    },
    socketCount: () => links.size,
    close: async () => {
      if (closed) return;
      closed = true;
      stopHeartbeat();
      for (const link of [...links]) link.socket?.end('server shutting down', false);
      if (links.size > 0) {
        await new Promise<void>((resolve) => {
          allGone = resolve;
          setTimeout(resolve, opts.closeGraceMs ?? 1000).unref();
        });
      }
      // Peers that ignored the close handshake are cut off. The upgrade listener stays to answer 503.
      for (const link of [...links]) link.close(true);
    },
  };
}
