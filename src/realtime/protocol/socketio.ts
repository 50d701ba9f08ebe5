/**
 * Socket.IO protocol 5 packets: `<type>[<attachments>-][/<nsp>,][<ackId>][JSON]`.
 * Binary packets are not supported. Encoders return complete websocket frames
 * (with the Engine.IO message prefix) so one encoded string can be fanned out as-is.
 */
import { EIO_MESSAGE_PREFIX } from './engineio.js';

export const SioType = {
  CONNECT: 0,
  DISCONNECT: 1,
  EVENT: 2,
  ACK: 3,
  CONNECT_ERROR: 4,
  BINARY_EVENT: 5,
  BINARY_ACK: 6,
} as const;

export type SioPacket =
  | { type: typeof SioType.CONNECT; nsp: string; data: Record<string, unknown> | undefined }
  | { type: typeof SioType.DISCONNECT; nsp: string }
  | { type: typeof SioType.EVENT; nsp: string; id: number | undefined; event: string; args: unknown[] }
  | { type: typeof SioType.ACK; nsp: string; id: number; args: unknown[] }
  | { type: typeof SioType.CONNECT_ERROR; nsp: string; data: unknown };

export type SioDecodeResult = { ok: true; packet: SioPacket } | { ok: false; reason: string };

export const MAX_ACK_ID = 2 ** 31;
const MAX_ACK_ID_DIGITS = 10;

/** Event names socket.io itself uses; a peer must not send them (same rule as socket.io-parser). */
const RESERVED_EVENTS = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

function fail(reason: string): SioDecodeResult {
  return { ok: false, reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Decodes the Socket.IO part of an Engine.IO message (without the leading "4"). Never throws. */
export function decodeSocketIo(text: string): SioDecodeResult {
  const type = text.charCodeAt(0) - 48;
  if (!(type >= SioType.CONNECT && type <= SioType.BINARY_ACK)) {
    return fail('unknown packet type');
  }
  if (type === SioType.BINARY_EVENT || type === SioType.BINARY_ACK) return fail('binary packets are not supported');

  let i = 1;
  let nsp = '/';
  if (text.charCodeAt(i) === 47 /* / */) {
    const comma = text.indexOf(',', i);
    const end = comma === -1 ? text.length : comma;
    nsp = text.slice(i, end);
    i = comma === -1 ? end : end + 1;
  }

  let id: number | undefined;
  const idStart = i;
  while (isDigit(text.charCodeAt(i))) {
    if (i - idStart >= MAX_ACK_ID_DIGITS) return fail('ack id too long');
    i++;
  }
  if (i > idStart) {
    id = Number(text.slice(idStart, i));
    if (id > MAX_ACK_ID) return fail('ack id out of range');
  }

  let payload: unknown;
  if (i < text.length) {
    try {
      payload = JSON.parse(text.slice(i));
    } catch {
      return fail('invalid JSON payload');
    }
  }

  switch (type) {
    case SioType.CONNECT:
      if (id !== undefined) return fail('unexpected ack id');
      if (payload !== undefined && !isPlainObject(payload)) return fail('CONNECT payload must be an object');
      return { ok: true, packet: { type, nsp, data: payload } };
    case SioType.DISCONNECT:
      if (id !== undefined || payload !== undefined) return fail('unexpected DISCONNECT content');
      return { ok: true, packet: { type, nsp } };
    case SioType.CONNECT_ERROR:
      if (id !== undefined) return fail('unexpected ack id');
      if (typeof payload !== 'string' && !isPlainObject(payload)) return fail('invalid CONNECT_ERROR payload');
      return { ok: true, packet: { type, nsp, data: payload } };
    case SioType.EVENT: {
      if (!Array.isArray(payload) || payload.length === 0) return fail('EVENT payload must be a non-empty array');
      const [event, ...args] = payload as unknown[];
      if (typeof event !== 'string') return fail('event name must be a string');
      if (RESERVED_EVENTS.has(event)) return fail('reserved event name');
      return { ok: true, packet: { type, nsp, id, event, args } };
    }
    default: // ACK
      if (id === undefined) return fail('ACK without id');
      if (!Array.isArray(payload)) return fail('ACK payload must be an array');
      return { ok: true, packet: { type: SioType.ACK, nsp, id, args: payload } };
  }
}

const EVENT_PREFIX = `${EIO_MESSAGE_PREFIX}${SioType.EVENT}`;

/** `42[<ackId>]["name",...args]`; throws like JSON.stringify on unserialisable args. */
export function encodeEvent(name: string, args: readonly unknown[], ackId?: number): string {
  return `${EVENT_PREFIX}${ackId ?? ''}${JSON.stringify([name, ...args])}`;
}

export function encodeAck(id: number, args: readonly unknown[]): string {
  return `${EIO_MESSAGE_PREFIX}${SioType.ACK}${id}${JSON.stringify(args)}`;
}

export function encodeConnect(sid: string): string {
  return `${EIO_MESSAGE_PREFIX}${SioType.CONNECT}${JSON.stringify({ sid })}`;
}

/** `nsp` lets the engine refuse a CONNECT to another namespace on that namespace's channel. */
export function encodeConnectError(data: { message: string; data?: unknown }, nsp = '/'): string {
  const prefix = nsp === '/' ? '' : `${nsp},`;
  return `${EIO_MESSAGE_PREFIX}${SioType.CONNECT_ERROR}${prefix}${JSON.stringify(data)}`;
}

export function encodeDisconnect(): string {
  return `${EIO_MESSAGE_PREFIX}${SioType.DISCONNECT}`;
}
