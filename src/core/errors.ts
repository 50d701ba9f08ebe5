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
  forbidden: (code: string, message: string) => new ImError(403, code, message),
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
  rateLimitExceeded: (retryAfterSeconds: number) =>
    new ImError(429, 'RATE_LIMIT_EXCEEDED', `Too many requests; retry after ${retryAfterSeconds} s`, { retryAfter: retryAfterSeconds }),
  storeUnavailable: () =>
    new ImError(503, 'STORE_UNAVAILABLE', 'The shared store (Redis) is unreachable; the request was not completed, try again shortly'),
} as const;

export function isImError(err: unknown): err is ImError {
  return err instanceof ImError;
}
