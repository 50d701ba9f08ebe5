/**
 * The one error type of roomcast. Every refusal a user can see carries a stable code, an
 * HTTP status (which IMKIT also repeats as RC) and a message a person can act on.
 */
export class ImError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra machine-readable fields of the error object (e.g. `retryAfter`). */
    readonly details?: Readonly<Record<string, string | number>>,
  ) {
    super(message);
    this.name = 'ImError';
  }

  /** IMKIT's envelope for an error: `{RC, RM, error:{code, message, …details}}`. */
  toEnvelope(): { RC: number; RM: string; error: { code: string; message: string } } {
    return { RC: this.status, RM: this.message, error: { ...this.details, code: this.code, message: this.message } };
  }
}

/** Catalogue of the errors the server raises, so each code is spelled in one place. */
export const Errors = {
  missingClientKey: () =>
    new ImError(401, 'MISSING_CLIENT_KEY', 'Client key is required for SDK initialization'),
  invalidClientKey: () =>
    new ImError(401, 'INVALID_CLIENT_KEY', 'The provided client key is invalid or expired'),
  clientKeyMismatch: () =>
    new ImError(403, 'CLIENT_KEY_MISMATCH', 'Client key does not match the specified domain'),
  missingToken: () =>
    new ImError(401, 'MISSING_TOKEN', 'A user token (IM-Authorization) is required with the client key'),
  invalidToken: () =>
    new ImError(401, 'INVALID_TOKEN', 'The user token is invalid, expired or revoked'),
  invalidApiKey: () => new ImError(401, 'INVALID_API_KEY', 'The API key is invalid'),
  apiKeyRequired: (what: string) =>
    new ImError(403, 'API_KEY_REQUIRED', `${what} requires the application's API key`),
  operatorDisabled: () =>
    new ImError(403, 'OPERATOR_DISABLED', 'Operator endpoints are disabled: set ROOMCAST_OPERATOR_SECRET'),
  invalidOperatorSecret: () =>
    new ImError(401, 'INVALID_OPERATOR_SECRET', 'Authorization: Bearer <operator secret> is missing or wrong'),
  clientKeyActive: () =>
    new ImError(
      409,
      'CLIENT_KEY_ALREADY_ACTIVE',
      'The application already has a client key; revoke it before generating a new one',
    ),
  noClientKey: () => new ImError(404, 'CLIENT_KEY_NOT_FOUND', 'The application has no client key; generate one'),
  notRoomMember: () => new ImError(403, 'NOT_ROOM_MEMBER', 'You are not a member of this room'),
  notFound: (what: 'ROOM' | 'MESSAGE' | 'CLIENT' | 'APP' | 'ROUTE', id?: string) =>
    new ImError(404, `${what}_NOT_FOUND`, `${what.toLowerCase()} ${id ? `'${id}' ` : ''}not found`),
  tokenNotFound: () => new ImError(404, 'TOKEN_NOT_FOUND', "That token is not one of this user's tokens"),
  bannedFromRoom: () => new ImError(403, 'BANNED_FROM_ROOM', 'You are banned from this room'),
  selfBlock: (what: 'block' | 'ban') => new ImError(400, 'SELF_BLOCK_FORBIDDEN', `You cannot ${what} yourself`),
  blockNotFound: (message: string) => new ImError(404, 'BLOCK_NOT_FOUND', message),
  roomExists: (id: string) => new ImError(409, 'ROOM_EXISTS', `room '${id}' already exists`),
  invalidInput: (message: string) => new ImError(400, 'INVALID_INPUT', message),
  malformedJson: () => new ImError(400, 'MALFORMED_JSON', 'The request body is not valid JSON'),
  bodyTooLarge: (limit: number) =>
    new ImError(413, 'PAYLOAD_TOO_LARGE', `The request body exceeds ${limit} bytes`),
  methodNotAllowed: () => new ImError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed on this route'),
  tooManySockets: (scope: 'application' | 'user') =>
    new ImError(
      429,
      'TOO_MANY_SOCKETS',
      scope === 'user' ? 'This user has reached the socket limit; close another device first' : 'This application has reached its socket limit',
    ),
  rateLimited: (what: string) => new ImError(429, 'RATE_LIMITED', `Too many ${what}; slow down`),
  internal: () => new ImError(500, 'INTERNAL_ERROR', 'Internal server error'),
  tokenConflict: () => new ImError(409, 'TOKEN_CONFLICT', 'That token is already assigned to another user'),
  alreadyBlocked: (where: 'list' | 'room') =>
    new ImError(409, 'USER_ALREADY_BLOCKED', where === 'list' ? 'This user is already in your block list' : 'This user is already banned from this room'),
  // The SDK features (issue 14).
  prefNotFound: (key: string) => new ImError(404, 'PREF_NOT_FOUND', `pref '${key}' not found`),
  clientExists: (id: string) => new ImError(409, 'CLIENT_EXISTS', `'${id}' is a user, not a group`),
  invitationRequired: () => new ImError(403, 'INVITATION_REQUIRED', 'This room can be joined only with an invitation'),
  invitationNotFound: (roomId: string) => new ImError(404, 'INVITATION_NOT_FOUND', `You have no invitation to room '${roomId}'`),
  notInviter: () => new ImError(403, 'NOT_INVITER', "Only the inviter or the room's owner or admins may withdraw an invitation"),
  sandboxDisabled: () =>
    new ImError(403, 'SANDBOX_DISABLED', 'Sign-in with the client key alone is disabled: use the API key, or set ROOMCAST_SANDBOX_SIGN_IN=true (development only)'),
  rateLimitExceeded: (retryAfterSeconds: number) =>
    new ImError(429, 'RATE_LIMIT_EXCEEDED', `Too many requests; retry after ${retryAfterSeconds} s`, { retryAfter: retryAfterSeconds }),
  inputLimit: (code: 'JSON_TOO_DEEP' | 'ARRAY_TOO_LONG' | 'STRING_TOO_LONG' | 'TOO_MANY_FIELDS', message: string) =>
    new ImError(400, code, message),
  messageTooLarge: (limit: number) =>
    new ImError(413, 'MESSAGE_TOO_LARGE', `The message exceeds ${limit} bytes once encoded`),
  quotaExceeded: (what: string) => new ImError(429, 'QUOTA_EXCEEDED', `Quota exceeded: ${what}; try again later`),
  roomClosed: () => new ImError(403, 'ROOM_NOT_PUBLIC', 'This room is not public: ask a member to add you'),
  badRequest: () => new ImError(400, 'BAD_REQUEST', 'The request line or headers are malformed'),
  authInProgress: () => new ImError(409, 'AUTH_IN_PROGRESS', 'This socket is already authenticating'),
  tooManyConnectAttempts: () => new ImError(429, 'TOO_MANY_CONNECT_ATTEMPTS', 'Too many CONNECT attempts on this socket'),
  storeUnavailable: () =>
    new ImError(503, 'STORE_UNAVAILABLE', 'The database (or Redis) is unreachable; the request was not completed, try again shortly'),
  // Codes that used to be spelled at their call sites (one place for each now).
  userTokenRequired: () =>
    new ImError(403, 'USER_TOKEN_REQUIRED', 'This operation acts as a user: use client key + token'),
  notRoomSuperuser: () =>
    new ImError(403, 'NOT_ROOM_SUPERUSER', "Only the room's owner or admins (or the API key) may do this"),
  notMessageSender: (orSuperuser: boolean) =>
    new ImError(403, 'NOT_MESSAGE_SENDER', orSuperuser ? "Only the sender or the room's owner or admins may do this" : 'Only the sender may do this to a message'),
  notUploader: () => new ImError(403, 'NOT_UPLOADER', 'Only the uploader (or the API key) may do this'),
  originNotAllowed: (origin: string) => new ImError(403, 'ORIGIN_NOT_ALLOWED', `Origin '${origin}' may not use this client key`),
  roomFrozen: () => new ImError(403, 'ROOM_FROZEN', 'This room is frozen: only its owner and admins may post'),
  blocked: () => new ImError(403, 'BLOCKED', 'Messages between these users are blocked'),
  cannotBanOwner: () => new ImError(403, 'CANNOT_BAN_OWNER', "The room's owner cannot be banned"),
  directRoomClosed: (what: 'join' | 'members') =>
    new ImError(403, 'DIRECT_ROOM_CLOSED', what === 'join' ? 'A direct room cannot be joined' : 'A direct room has fixed members'),
  messageRecalled: (what: 'pinned' | 'edited') => new ImError(409, 'MESSAGE_RECALLED', `A recalled message cannot be ${what}`),
  invalidQuery: (message: string, param = 'q') => new ImError(400, 'INVALID_QUERY', `${param}: ${message}`),
  invalidPath: (kind: string, value: string) =>
    new ImError(400, 'INVALID_PATH', `${kind} '${value}' is not a plain name (letters, digits, . _ -)`),
  unsupportedMediaType: (mimetype: string) => new ImError(415, 'UNSUPPORTED_MEDIA_TYPE', `Files of type '${mimetype}' are not accepted`),
  fileTooLarge: (limit: number) => new ImError(413, 'FILE_TOO_LARGE', `Files may be at most ${limit} bytes`),
  fileNotFound: (message: string) => new ImError(404, 'FILE_NOT_FOUND', message),
  invalidSignature: () => new ImError(403, 'INVALID_SIGNATURE', 'The link signature is not valid'),
  linkExpired: () => new ImError(403, 'LINK_EXPIRED', 'The link has expired; ask for a new one'),
  multipartRequired: () => new ImError(400, 'MULTIPART_REQUIRED', 'Send multipart/form-data with a "file" part'),
  fileRequired: () => new ImError(400, 'FILE_REQUIRED', 'The form has no "file" part'),
  malformedMultipart: () => new ImError(400, 'MALFORMED_MULTIPART', 'The multipart body could not be parsed'),
  unknownEvent: (event: string) => new ImError(400, 'UNKNOWN_EVENT', `Unknown event '${event}'`),
  notAuthenticated: () =>
    new ImError(401, 'NOT_AUTHENTICATED', 'Authenticate first with auth2(token, {"IM-CLIENT-KEY": …})'),
  messageExists: (id: string) => new ImError(409, 'MESSAGE_EXISTS', `A message with the id '${id}' already exists`),
  /** The store refused a send checked against a room version that has moved on (read again, retry). */
  roomChanged: (id: string) => new ImError(409, 'ROOM_CHANGED', `Room '${id}' changed while the message was being sent; send it again`),
  unsupportedEncoding: () => new ImError(400, 'UNSUPPORTED_ENCODING', "encoding must be 'base64' (or 'none')"),
} as const;

export function isImError(err: unknown): err is ImError {
  return err instanceof ImError;
}

/** Refusals the server reacts to itself, told apart here so that no caller spells their codes. */
export const isRoomChanged = (err: unknown): boolean => isImError(err) && err.code === 'ROOM_CHANGED';
export const isRoomExists = (err: unknown): boolean => isImError(err) && err.code === 'ROOM_EXISTS';
