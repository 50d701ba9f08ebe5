import http from 'node:http';
import { pipeline } from 'node:stream';
import { Errors } from '../core/errors.js';
import { fail } from './envelope.js';
import { type HttpRequest, type HttpResponse, type HttpService, isStreamBody } from './types.js';

/** The node:http adapter (fallback transport): same service, same behaviour as uWS. */
export function createNodeServer(service: HttpService, maxBodyBytes: number): http.Server {
  return http.createServer((req, res) => {
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
    };
    const run = () => service.handle(request).then((response) => send(req, res, response, method === 'HEAD'));

    if (service.streamsBody(method, url.pathname)) {
      request.stream = req; // the handler reads (and limits) it
      void run();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        refused = true;
        send(req, res, fail(Errors.bodyTooLarge(maxBodyBytes)), false, true);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
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
