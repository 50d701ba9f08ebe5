import { STATUS_CODES } from 'node:http';
import type { HttpResponse as UwsResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import { fail } from './envelope.js';
import { bodyTooLarge } from './app.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The uWebSockets.js adapter (primary transport): every path not claimed by a WebSocket route. */
export function registerUwsHttp(app: TemplatedApp, handler: HttpHandler, maxBodyBytes: number): void {
  app.any('/*', (res, req) => {
    // uWS request objects live only until this callback returns: copy what we need now.
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    });
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const run = (body: Buffer) => {
      const request: HttpRequest = { method, path, query, headers, body, remoteAddress };
      handler(request).then((response) => {
        if (!aborted) write(res, response, false);
      });
    };
    const hasBody = !BODYLESS.has(method) || headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
    if (!hasBody || headers['content-length'] === '0') return run(Buffer.alloc(0));
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      aborted = true;
      write(res, fail(bodyTooLarge(maxBodyBytes)), true);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (aborted) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) {
        aborted = true;
        write(res, fail(bodyTooLarge(maxBodyBytes)), true);
        return;
      }
      // The ArrayBuffer is reused by uWS after this callback: copy it.
      chunks.push(Buffer.from(Buffer.from(chunk)));
      if (isLast) run(Buffer.concat(chunks));
    });
  });
}

function write(res: UwsResponse, response: HttpResponse, close: boolean): void {
  res.cork(() => {
    res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ''}`);
    for (const [name, value] of Object.entries(response.headers)) res.writeHeader(name, value);
    res.end(response.body, close);
  });
}
