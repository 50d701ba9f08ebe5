/**
 * Engine.IO protocol 4. Over WebSocket one text frame carries one packet, `<type digit><data>`;
 * over HTTP long-polling a body carries several packets joined by the record separator \x1e,
 * binary ones as `b<base64>`. Binary packets are not supported (the IMKIT protocol is text).
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
export const EIO_CLOSE = '1';
export const EIO_NOOP = '6';
export const EIO_UPGRADE = '5';
export const EIO_PROBE_PING = '2probe';
export const EIO_PROBE_PONG = '3probe';
export const EIO_MESSAGE_PREFIX = '4';
/** Separates packets in a long-polling body. */
export const PAYLOAD_SEPARATOR = '\x1e';

export const encodePayload = (frames: readonly string[]): string => frames.join(PAYLOAD_SEPARATOR);
export const decodePayload = (body: string): string[] => body.split(PAYLOAD_SEPARATOR);

export interface OpenParams {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
}

/** Returns a function building the open packet for a sid; the constant part is encoded once. */
export function openPacketEncoder(params: OpenParams, upgrades: readonly string[]): (sid: string) => string {
  const tail = JSON.stringify({
    upgrades,
    pingInterval: params.pingIntervalMs,
    pingTimeout: params.pingTimeoutMs,
    maxPayload: params.maxPayloadBytes,
  }).slice(1);
  return (sid) => `0{"sid":${JSON.stringify(sid)},${tail}`;
}

/** Engine.IO's HTTP error codes (engine.io `Server.errorMessages`). */
export const EioError = {
  UNKNOWN_TRANSPORT: 0,
  UNKNOWN_SID: 1,
  BAD_HANDSHAKE_METHOD: 2,
  BAD_REQUEST: 3,
  FORBIDDEN: 4,
  UNSUPPORTED_PROTOCOL_VERSION: 5,
} as const;
type EioErrorCode = (typeof EioError)[keyof typeof EioError];

const ERROR_MESSAGES: Record<EioErrorCode, string> = {
  0: 'Transport unknown',
  1: 'Session ID unknown',
  2: 'Bad handshake method',
  3: 'Bad request',
  4: 'Forbidden',
  5: 'Unsupported protocol version',
};

export interface HttpRefusal {
  status: number;
  body: string;
}

/** Engine.IO's refusal: 403 for FORBIDDEN, else 400, body `{"code":n,"message":"…"}`. */
export function eioRefusal(code: EioErrorCode): HttpRefusal {
  return { status: code === EioError.FORBIDDEN ? 403 : 400, body: JSON.stringify({ code, message: ERROR_MESSAGES[code] }) };
}

export function isEngineIoPath(pathname: string): boolean {
  return pathname === '/socket.io' || pathname.startsWith('/socket.io/');
}

/**
 * The query checks of a request opening a session (no sid), in engine.io's order: transport,
 * then (GET only) method, a websocket transport only by upgrade, then the protocol revision.
 */
export function checkOpenQuery(
  query: URLSearchParams,
  via: 'upgrade' | 'http',
  transports: readonly string[],
  method = 'GET',
): HttpRefusal | undefined {
  const transport = query.get('transport') ?? '';
  if (!transports.includes(transport)) return eioRefusal(EioError.UNKNOWN_TRANSPORT);
  if (via === 'http' && method !== 'GET') return eioRefusal(EioError.BAD_HANDSHAKE_METHOD);
  if ((transport === 'websocket') !== (via === 'upgrade')) return eioRefusal(EioError.BAD_REQUEST);
  if (query.get('EIO') !== '4') return eioRefusal(EioError.UNSUPPORTED_PROTOCOL_VERSION);
  return undefined;
}
