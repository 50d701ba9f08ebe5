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
   * A socket whose unsent output exceeds this is cut (reason `slow consumer`). Default 1 MiB;
   * the server passes ROOMCAST_MAX_SOCKET_BUFFER_BYTES.
   */
  maxBackpressureBytes?: number;
}

/**
 * uWS closes a socket over its backpressure limit itself and reports code 1006, like any
 * abrupt close. Inside one of our writes (a direct send, or a publish of a frame of 16 KiB or
 * more, which uWS sends at once) such a close is that cut, never the peer going away. Small
 * published frames are sent from uWS's own loop hook, where the close cannot be told apart
 * from a peer that vanished: there an abrupt close of a socket that has not answered the
 * latest heartbeat ping (it stopped reading) is counted as the cut.
 */
const writing = { depth: 0 };
/** WebSocket close code for a connection closed without a close frame. */
const ABRUPT = 1006;
function write<T>(action: () => T): T {
  writing.depth++;
  try {
    return action();
  } finally {
    writing.depth--;
  }
}

/** NUL-prefixed so it cannot clash with application topic names. */
const HEARTBEAT_TOPIC = '\u0000eio:heartbeat';
const SHUTTING_DOWN: UpgradeDecision = {
  accept: false,
  status: 503,
  body: JSON.stringify({ message: 'Server shutting down' }),
};

interface SocketData {
  remoteAddress: string;
  context: unknown;
  socket?: LinkEndpoint;
}

class UwsLink implements TransportLink {
  readonly transport = 'uws';
  constructor(private readonly ws: WebSocket<SocketData>) {}

  send(frame: string): void {
    write(() => this.ws.send(frame, false));
  }

  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  close(hard: boolean): void {
    if (hard) this.ws.close();
    else this.ws.end(1000);
  }

  joinHeartbeat(): void {
    this.ws.subscribe(HEARTBEAT_TOPIC);
  }
}

function writeJson(res: HttpResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`).writeHeader('content-type', 'application/json');
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  res.end(body);
}

export function attachUws(app: TemplatedApp, engine: SocketEngine, opts: UwsAttachOptions = {}): RealtimeServer {
  const live = new Set<LinkEndpoint>();
  let closed = false;
  const stopHeartbeat = engine.addHeartbeatTarget({
    broadcast: (frame) => write(() => app.publish(HEARTBEAT_TOPIC, frame, false)),
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
      remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
      transport: 'uws',
    };
    const respond = (decision: UpgradeDecision): void => {
      if (!decision.accept) return writeJson(res, decision.status, decision.body, decision.headers);
      const data: SocketData = { remoteAddress: request.remoteAddress, context: decision.context };
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
    maxBackpressure: opts.maxBackpressureBytes ?? 1024 * 1024,
    closeOnBackpressureLimit: 1,
    upgrade,
    open: (ws) => {
      try {
        const data = ws.getUserData();
        data.socket = engine.open(new UwsLink(ws), data.remoteAddress, data.context);
        live.add(data.socket);
      } catch (err) {
        engine.reportError(err, 'open');
      }
    },
    message: (ws, message, isBinary) => {
      try {
        ws.getUserData().socket?.receive(isBinary ? '' : Buffer.from(message).toString('utf8'), isBinary);
      } catch (err) {
        engine.reportError(err, 'message');
      }
    },
    close: (ws, code) => {
      const socket = ws.getUserData().socket;
      if (!socket) return;
      live.delete(socket);
      try {
        const cut = code === ABRUPT && (writing.depth > 0 || socket.owesPong);
        socket.transportClosed(cut ? SLOW_CONSUMER : undefined);
      } catch (err) {
        engine.reportError(err, 'close');
      }
    },
  });

  // Plain HTTP on the Engine.IO path (long-polling) falls through to the HTTP routes (polling.ts).

  return {
    publish: (topic, frame) => {
      write(() => app.publish(topic, frame, false));
    },
    socketCount: () => live.size,
    close: async () => {
      if (closed) return;
      closed = true;
      stopHeartbeat();
      for (const socket of [...live]) socket.end('server shutting down', false);
    },
  };
}
