import http from 'node:http';
import { fail } from './envelope.js';
import { bodyTooLarge } from './app.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

/** The node:http adapter (fallback transport): same handler, same behaviour as uWS. */
export function createNodeServer(handler: HttpHandler, maxBodyBytes: number): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        refused = true;
        send(res, fail(bodyTooLarge(maxBodyBytes)), true);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const request: HttpRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        query: url.searchParams,
        headers,
        body: Buffer.concat(chunks),
        remoteAddress: req.socket.remoteAddress ?? '',
      };
      handler(request).then((response) => send(res, response, false));
    });
    req.on('error', () => res.destroy());
  });
}

function send(res: http.ServerResponse, response: HttpResponse, close: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { ...response.headers, 'content-length': Buffer.byteLength(response.body) };
  if (close) headers.connection = 'close';
  res.writeHead(response.status, headers);
  res.end(response.body);
}
