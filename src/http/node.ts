import http from 'node:http';
import { pipeline } from 'node:stream';
import { Errors } from '../core/errors.js';
import { fail, withHeaders } from './envelope.js';
import { type HttpRequest, type HttpResponse, type HttpService, isStreamBody } from './types.js';

/** Past this much of a refused body, the 413 is sent and the connection closed without reading on. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/** The node:http adapter (fallback transport): same service, same behaviour as uWS. */
export function createNodeServer(service: HttpService, maxBodyBytes: number): http.Server {
  return attachNodeHttp(http.createServer(), service, maxBodyBytes);
}

/** Serves `service` on a node http or https server (HTTPS is an http.Server subclass). */
export function attachNodeHttp<S extends http.Server>(server: S, service: HttpService, maxBodyBytes: number): S {
  return server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = requestUrl(req.url);
    if (!url) {
      // An absolute-form or otherwise unparsable request target: answer, never throw.
      send(req, res, fail(Errors.badRequest()), false, true);
      return;
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const request: HttpRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      headers,
      body: Buffer.alloc(0),
      remoteAddress: req.socket.remoteAddress ?? '',
      onAborted: (listener) => {
        res.once('close', () => {
          if (!res.writableFinished) listener();
        });
      },
    };
    const run = () => service.handle(request).then((response) => send(req, res, response, method === 'HEAD'));

    if (service.streamsBody(method, url.pathname)) {
      request.stream = req; // the handler reads (and limits) it
      void run();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Over the limit, the body is read to its end and dropped before the 413 goes out, as on
    // uWS: a client still writing when the connection closes sees EPIPE, not the answer.
    let refused = false;
    const refuse = () => send(req, res, withHeaders(fail(Errors.bodyTooLarge(maxBodyBytes)), service.refusalHeaders?.(request)), false, true);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (refused) {
        if (size > MAX_DRAIN_BYTES && !res.headersSent) refuse();
        return;
      }
      if (size > maxBodyBytes) {
        refused = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return refuse();
      request.body = Buffer.concat(chunks);
      void run();
    });
    req.on('error', () => res.destroy());
  });
}

/**
 * The request target as a URL: origin-form (`/path?query`, taken as a path even when it starts
 * with `//`) or absolute-form (`http://host/path`); undefined when it does not parse.
 */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    if (target === undefined || target === '') return new URL('http://localhost/');
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target);
  } catch {
    return undefined;
  }
}

function send(req: http.IncomingMessage, res: http.ServerResponse, response: HttpResponse, head: boolean, close = false): void {
  if (res.headersSent || res.destroyed) {
    if (isStreamBody(response.body)) response.body.stream.destroy();
    return;
  }
  const body = response.body;
  const length = isStreamBody(body) ? body.length : Buffer.byteLength(body);
  const headers: Record<string, string | number> = { ...response.headers, 'content-length': length };
  if (close) headers.connection = 'close';
  res.writeHead(response.status, headers);
  if (!isStreamBody(body)) {
    res.end(head ? undefined : body);
  } else if (head) {
    body.stream.destroy();
    res.end();
  } else {
    pipeline(body.stream, res, () => undefined);
  }
  // An unread request body (e.g. an upload refused early) is drained so the socket stays usable.
  if (!req.readableEnded) req.resume();
}
