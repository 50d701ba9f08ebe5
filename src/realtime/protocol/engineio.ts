/**
 * Engine.IO protocol 4 over WebSocket: one text frame carries exactly one packet,
 * `<type digit><data>`. Binary frames are not supported.
 */

export type EioPacketType = 'open' | 'close' | 'ping' | 'pong' | 'message' | 'upgrade' | 'noop';

const TYPES: readonly EioPacketType[] = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'];

export type EioDecodeResult =
  | { ok: true; type: EioPacketType; data: string }
  | { ok: false; reason: string };

export function decodeEio(frame: string): EioDecodeResult {
  const type = TYPES[frame.charCodeAt(0) - 48 /* '0' */];
  if (type === undefined) return { ok: false, reason: 'unknown engine.io packet type' };
  return { ok: true, type, data: frame.slice(1) };
}

export const EIO_PING = '2';
export const EIO_MESSAGE_PREFIX = '4';

export interface OpenParams {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
}

/** Returns a function building the open packet for a sid; the constant part is encoded once. */
export function openPacketEncoder(params: OpenParams): (sid: string) => string {
  const tail = JSON.stringify({
    upgrades: [],
    pingInterval: params.pingIntervalMs,
    pingTimeout: params.pingTimeoutMs,
    maxPayload: params.maxPayloadBytes,
  }).slice(1);
  return (sid) => `0{"sid":${JSON.stringify(sid)},${tail}`;
}

/** Engine.IO's HTTP error codes (see engine.io `Server.errorMessages`). */
const ERROR_MESSAGES = {
  0: 'Transport unknown',
  1: 'Session ID unknown',
  3: 'Bad request',
} as const;

export interface HttpRefusal {
  status: number;
  body: string;
}

function refusal(code: keyof typeof ERROR_MESSAGES): HttpRefusal {
  return { status: 400, body: JSON.stringify({ code, message: ERROR_MESSAGES[code] }) };
}

export function isEngineIoPath(pathname: string): boolean {
  return pathname === '/socket.io' || pathname.startsWith('/socket.io/');
}

/** Checks the query of a websocket upgrade; undefined when acceptable. Unknown params (e.g. b64) are ignored. */
export function checkUpgradeQuery(query: URLSearchParams): HttpRefusal | undefined {
  if (query.get('EIO') !== '4') return refusal(3);
  if (query.get('transport') !== 'websocket') return refusal(0);
  // A sid means an upgrade from a polling session, which cannot exist here.
  if (query.has('sid')) return refusal(1);
  return undefined;
}

/** The answer to any plain HTTP (long-polling) request on the Engine.IO path. */
export function engineIoPollingRefusal(query: URLSearchParams): HttpRefusal {
  if (query.get('EIO') !== '4' || query.get('transport') === 'websocket') return refusal(3);
  return refusal(0);
}
