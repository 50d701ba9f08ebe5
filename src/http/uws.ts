import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import type { HttpResponse as UwsResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import { Errors } from '../core/errors.js';
import { fail, withHeaders } from './envelope.js';
import { type HttpRequest, type HttpResponse, type HttpService, isStreamBody, type StreamBody } from './types.js';

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Shared by every request without a query string (most sends): routes only read queries. */
const NO_QUERY = new URLSearchParams();

/** Per request: whether `res` may still be touched, and how to un-pause an unread body. */
interface UwsState {
  /** Aborted by the peer, or answered: uWS forbids any further access to `res`. */
  aborted: boolean;
  /** Resumes a paused request body (an answer must never leave uWS paused: it would stop reading). */
  unpause?: () => void;
  /** The route's abort listener (long-polling); uWS allows one abort handler per response. */
  listener?: () => void;
}

/** The uWebSockets.js adapter (primary transport): every path not claimed by a WebSocket route. */
export function registerUwsHttp(app: TemplatedApp, service: HttpService, maxBodyBytes: number): void {
  app.any('/*', (res, req) => {
    // uWS request objects live only until this callback returns: copy what we need now.
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    });
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const search = req.getQuery();
    const query = search ? new URLSearchParams(search) : NO_QUERY;
    const state: UwsState = { aborted: false };
    // Asked of uWS only when read (long-polling handshakes): each ask is a getpeername call.
    let remoteAddress: string | undefined;
    res.onAborted(() => {
      state.aborted = true;
      state.listener?.();
    });
    const request: HttpRequest = {
      method,
      path,
      query,
      headers,
      body: Buffer.alloc(0),
      get remoteAddress() {
        return (remoteAddress ??= state.aborted ? '' : Buffer.from(res.getRemoteAddressAsText()).toString());
      },
      onAborted: (listener) => {
        state.listener = listener;
      },
    };
    const run = () => {
      service.handle(request).then((response) => write(res, state, response, method === 'HEAD', false));
    };
    const hasBody = !BODYLESS.has(method) || headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
    if (!hasBody || headers['content-length'] === '0') {
      if (service.streamsBody(method, path)) request.stream = Readable.from([]);
      return run();
    }
    if (service.streamsBody(method, path)) {
      request.stream = bodyStream(res, state);
      return run();
    }
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) return refuseTooLarge(res, state, maxBodyBytes, 0, false, service.refusalHeaders?.(request));
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.aborted) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) return refuseTooLarge(res, state, maxBodyBytes, size, isLast, service.refusalHeaders?.(request));
      chunks.push(copy(chunk));
      if (isLast) {
        request.body = Buffer.concat(chunks);
        run();
      }
    });
  });
}

const STATUS_LINES = new Map<number, string>();
/** `200 OK`, built once per status. */
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) STATUS_LINES.set(status, (line = `${status} ${STATUS_CODES[status] ?? ''}`));
  return line;
}

/** Past this much of a refused body, the connection is closed instead of read to the end. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * 413 for a body over the limit, sent once the client has finished sending (the rest is read
 * and dropped, as node's http does): closing while it still sends makes it fail with EPIPE
 * before it reads the 413. A body that goes on past MAX_DRAIN_BYTES is answered and cut off then.
 */
function refuseTooLarge(
  res: UwsResponse,
  state: { aborted: boolean },
  maxBodyBytes: number,
  seen: number,
  isLast: boolean,
  cors: Record<string, string> | undefined,
): void {
  // `state.aborted` stays the client's: this onData replaces the reading one, so the handler never runs.
  const answer = () => write(res, state, withHeaders(fail(Errors.bodyTooLarge(maxBodyBytes)), cors), false, true);
  if (isLast) return answer();
  let drained = seen;
  let done = false;
  res.onData((chunk, last) => {
    if (done || state.aborted) return;
    drained += chunk.byteLength;
    if (last || drained > MAX_DRAIN_BYTES) {
      done = true;
      answer();
    }
  });
}

/** uWS reuses the ArrayBuffer after the callback: keep a copy. */
const copy = (chunk: ArrayBuffer): Buffer => Buffer.from(new Uint8Array(chunk));

/** The request body as a Readable, with backpressure mapped onto uWS pause/resume. */
function bodyStream(res: UwsResponse, state: UwsState): Readable {
  let paused = false;
  state.unpause = () => {
    if (!paused || state.aborted) return;
    paused = false;
    res.resume();
  };
  const stream = new Readable({
    read() {
      if (paused && !state.aborted) {
        paused = false;
        res.resume();
      }
    },
  });
  res.onData((chunk, isLast) => {
    if (state.aborted) return;
    if (!stream.push(copy(chunk)) && !isLast) {
      paused = true;
      res.pause();
    }
    if (isLast) stream.push(null);
  });
  res.onAborted(() => {
    state.aborted = true;
    stream.destroy(new Error('client aborted the request'));
  });
  return stream;
}

function write(res: UwsResponse, state: UwsState, response: HttpResponse, head: boolean, closeAfter: boolean): void {
  const body = response.body;
  // uWS closes only when told to at end(); a `connection: close` header alone is not enough.
  const close = closeAfter || response.headers.connection === 'close';
  if (state.aborted && !closeAfter) {
    if (isStreamBody(body)) body.stream.destroy();
    return;
  }
  res.cork(() => {
    state.unpause?.();
    res.writeStatus(statusLine(response.status));
    const headers = response.headers;
    for (const name in headers) res.writeHeader(name, headers[name]!);
    if (!isStreamBody(body)) {
      if (head) res.endWithoutBody(Buffer.byteLength(body), close);
      else res.end(body, close);
    } else if (head) {
      body.stream.destroy();
      res.endWithoutBody(body.length, close);
    }
  });
  if (isStreamBody(body) && !head) return streamOut(res, state, body);
  // Answered: uWS forbids touching `res` again (an unread request body's pause/resume included).
  state.aborted = true;
}

/** Streams a body of known length with uWS's tryEnd/onWritable backpressure protocol. */
function streamOut(res: UwsResponse, state: UwsState, { stream, length }: StreamBody): void {
  if (length === 0) {
    res.cork(() => res.end());
    state.aborted = true;
    stream.destroy();
    return;
  }
  let pending: { chunk: Buffer; offset: number } | undefined;
  const finish = () => {
    state.aborted = true; // done or gone: `res` must not be touched again
    stream.destroy();
  };
  res.onAborted(() => {
    state.aborted = true;
    finish();
  });
  stream.on('error', () => {
    if (!state.aborted) res.cork(() => res.close());
    state.aborted = true;
  });
  stream.on('data', (chunk: Buffer) => {
    if (state.aborted) return finish();
    const offset = res.getWriteOffset();
    let ok = false;
    let done = false;
    res.cork(() => {
      [ok, done] = res.tryEnd(chunk, length);
    });
    if (done) return finish();
    if (ok) return;
    pending = { chunk, offset };
    stream.pause();
    res.onWritable((writeOffset) => {
      if (!pending) return true;
      const [retryOk, retryDone] = res.tryEnd(pending.chunk.subarray(writeOffset - pending.offset), length);
      if (retryDone) finish();
      else if (retryOk) {
        pending = undefined;
        stream.resume();
      }
      return retryOk;
    });
  });
}
