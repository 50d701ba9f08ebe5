import { io, type Socket } from 'socket.io-client';

/** The stock socket.io-client, WebSocket only, as IMKIT's docs configure it. */
export function connect(base: string, opts: Record<string, unknown> = {}): Socket {
  return io(base, { transports: ['websocket'], forceNew: true, reconnection: false, ...opts });
}

/**
 * A socket signed in as the SDKs do it: connect, then `auth2` with the user's token and the
 * client key; resolves once the ack says RC 0. Pushed onto `track` (when given) for closing.
 */
export async function signedIn(base: string, token: string, clientKey: string, track?: Socket[]): Promise<Socket> {
  const s = connect(base);
  track?.push(s);
  await once(s, 'connect');
  const ack = (await s.timeout(5000).emitWithAck('auth2', token, { 'IM-CLIENT-KEY': clientKey })) as { RC: number };
  if (ack.RC !== 0) throw new Error(`auth2 refused: ${JSON.stringify(ack)}`);
  return s;
}

export function once<T = unknown>(socket: Socket, event: string, timeoutMs = 10_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (...args: T[]) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Collects every payload of an event, for "received exactly / never" assertions. */
export function collect<T = unknown>(socket: Socket, event: string): T[] {
  const seen: T[] = [];
  socket.on(event, (payload: T) => seen.push(payload));
  return seen;
}

export const decodeB64 = (value: unknown): any => JSON.parse(Buffer.from(value as string, 'base64').toString('utf8'));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds (for state the server reaches asynchronously). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}
