import { z } from 'zod';
import { Errors } from './errors.js';
import { ownValue } from './own.js';

/**
 * IMKIT's message types and what each one must carry (api-doc `message/Message-Format.md`, and
 * what the official SDKs send: imkit-flutter-sdk `lib/models/im_message.dart` `parameters`,
 * the Vue SDK's send functions). A media message carries its URL fields, not `message`.
 * Fields are stored as sent; only the presence and the shape of the required ones are checked.
 */

/** URLs as sent; an empty one is kept but does not count as present (a media type needs a real one). */
const url = z.string().trim().max(4096);
const nonNegative = z.number().finite().min(0);

/** Shapes of the optional fields when they are present (wrong types are a 400 naming the field). */
export const FIELD_SHAPES = {
  originalUrl: url.optional(),
  thumbnailUrl: url.optional(),
  url: url.optional(),
  width: nonNegative.nullish(),
  height: nonNegative.nullish(),
  duration: nonNegative.nullish(),
  latitude: z.number().finite().min(-90).max(90).optional(),
  longitude: z.number().finite().min(-180).max(180).optional(),
  sticker: z.string().trim().min(1).max(256).optional(),
  images: z.array(z.looseObject({ originalUrl: url.min(1), thumbnailUrl: url.nullish() })).max(50).optional(),
  template: z.record(z.string(), z.unknown()).optional(),
  contents: z.record(z.string(), z.unknown()).optional(),
};

/** Optional IMKIT message fields stored as sent (§3.10, §4.4 of the protocol notes). */
export const OPTIONAL_FIELDS = [
  'originalUrl', 'thumbnailUrl', 'width', 'height', 'images', 'duration', 'latitude', 'longitude',
  'url', 'reply', 'sticker', 'extra', 'template', 'contents', 'mentions', 'video', 'file', 'member',
  'rtcSession', 'batchID',
] as const;

type Body = Record<string, unknown>;
type Rule = (body: Body) => string | undefined;

/** Present: not absent or null; for anything but `message`, not an empty string either. */
const has = (body: Body, key: string) => body[key] !== undefined && body[key] !== null && (key === 'message' || body[key] !== '');
const need = (...keys: string[]): Rule => (body) => (keys.every((k) => has(body, k)) ? undefined : keys.find((k) => !has(body, k)));
const oneOf = (...keys: string[]): Rule => (body) => (keys.some((k) => has(body, k)) ? undefined : keys.join(' or '));

/** The one field a type cannot do without (undefined = nothing required). */
const REQUIRED: Record<string, Rule> = {
  text: need('message'),
  url: oneOf('url', 'message'),
  image: (body) => (Array.isArray(body.images) && body.images.length > 0) || has(body, 'originalUrl') ? undefined : 'images or originalUrl',
  video: oneOf('originalUrl', 'url'),
  audio: oneOf('originalUrl', 'url'),
  voice: oneOf('originalUrl', 'url'),
  file: oneOf('originalUrl', 'url'),
  sticker: need('sticker'),
  location: need('latitude', 'longitude'),
  template: oneOf('template', 'extra'),
  flex: need('contents'),
  encrypted: need('message'),
  announcement: need('message'),
};

/**
 * System types (room events) and call types: accepted with whatever they carry, since their
 * payload is descriptive (`extra.members`, `member`, `rtcSession`).
 */
const FREE_FORM = new Set([
  'joinRoom', 'leaveRoom', 'addMember', 'addMembers', 'deleteMember', 'deleteMembers', 'cancelInvitations',
  'assignAdmin', 'waitingCall', 'missingCall', 'endCall',
]);

const CONTENT_KEYS = ['message', ...OPTIONAL_FIELDS.filter((k) => k !== 'reply' && k !== 'mentions' && k !== 'batchID')];

/** Throws a 400 naming what a new message of this type lacks. */
export function checkRequiredFields(messageType: string, body: Body): void {
  if (FREE_FORM.has(messageType)) return;
  // Own entries only: a type named like an Object.prototype member ('hasOwnProperty') is a custom type.
  const rule = ownValue(REQUIRED, messageType);
  if (rule) {
    const missing = rule(body);
    if (missing) throw Errors.invalidInput(`${missing}: required for messageType '${messageType}'`);
    return;
  }
  // A custom type (payment, mixed, …) must carry something to show.
  if (!CONTENT_KEYS.some((k) => has(body, k))) {
    throw Errors.invalidInput(`message: required for messageType '${messageType}' (or one of extra, template, contents, originalUrl)`);
  }
}
