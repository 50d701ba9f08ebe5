import net from 'node:net';
import WebSocket from 'ws';

/**
 * Raw protocol helpers for attacks no well-behaved client makes: hand-written request lines
 * and Engine.IO/Socket.IO frames sent one by one.
 */

/** Sends raw bytes on a fresh TCP connection; resolves with what came back before close or `waitMs`. */
export function rawHttp(base: string, request: string, waitMs = 3000): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, waitMs);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      // One full response head is enough.
      if (text.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (text) resolve(text);
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(request);
  });
}

/** The status code of a raw HTTP response, or 0 when none came. */
export const statusOf = (response: string): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);

/** A WebSocket speaking Engine.IO by hand: every text frame it receives is queued. */
export interface RawSocket {
  ws: WebSocket;
  frames: string[];
  /** The next frame matching `match` (already received or yet to come). */
  next(match: (frame: string) => boolean, timeoutMs?: number): Promise<string>;
  closed: Promise<void>;
  send(frame: string): void;
}

export async function rawSocket(base: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<RawSocket> {
  const qs = new URLSearchParams({ EIO: '4', transport: 'websocket', ...query });
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/socket.io/?${qs}`, { headers });
  const frames: string[] = [];
  const waiters: { match: (f: string) => boolean; resolve: (f: string) => void }[] = [];
  ws.on('message', (data) => {
    const frame = data.toString();
    if (frame === '2') return ws.send('3'); // answer pings so heartbeats never interfere
    frames.push(frame);
    for (const w of [...waiters]) {
      if (w.match(frame)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(frame);
      }
    }
  });
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  return {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(frame),
    next(match, timeoutMs = 5000) {
      const seen = frames.find(match);
      if (seen) {
        frames.splice(frames.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching frame in time')), timeoutMs);
        waiters.push({
          match,
          resolve: (f) => {
            clearTimeout(timer);
            frames.splice(frames.indexOf(f), 1);
            resolve(f);
          },
        });
      });
    },
  };
}

/** The HTTP status an upgrade attempt was refused with, or 101 when it was accepted. */
export function upgradeStatus(base: string, query: Record<string, string>, headers: Record<string, string> = {}): Promise<number> {
  const qs = new URLSearchParams({ EIO: '4', transport: 'websocket', ...query });
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/socket.io/?${qs}`, { headers });
  return new Promise((resolve) => {
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.once('error', () => resolve(0));
  });
}

/**
 * A raw handshake: `http <status>` when the upgrade is refused, else the Socket.IO CONNECT is
 * sent and the answer returned: `connected`, or the CONNECT_ERROR's message (the error code).
 */
export function handshakeOutcome(base: string, query: Record<string, string>, headers: Record<string, string> = {}): Promise<string> {
  const qs = new URLSearchParams({ EIO: '4', transport: 'websocket', ...query });
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/socket.io/?${qs}`, { headers });
  return new Promise((resolve) => {
    const done = (outcome: string) => {
      ws.terminate();
      resolve(outcome);
    };
    ws.on('message', (data) => {
      const frame = String(data);
      if (frame.startsWith('0')) return ws.send('40');
      if (frame.startsWith('40')) return done('connected');
      if (frame.startsWith('44')) return done((JSON.parse(frame.slice(2)) as { message: string }).message);
    });
    ws.once('unexpected-response', (req, res) => {
      resolve(`http ${res.statusCode ?? 0}`);
      req.destroy();
    });
    ws.once('error', () => resolve('error'));
  });
}

/** JSON text nested `depth` levels deep (arrays). */
export const deepText = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** A value nested `depth` levels deep (arrays). */
export const deepJson = (depth: number): unknown => JSON.parse(deepText(depth));
