import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs. Credential headers are redacted by path as a second line of defence:
 * the code never logs a secret on purpose.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'roomcast' },
    // Errors are logged by name, message, code and stack only: a client library's error may
    // carry the command it failed on (ioredis: `command.args`, holding whole records with
    // their secrets), and none of that may reach a log.
    serializers: { err: describeError },
    redact: {
      paths: [
        'headers["im-api-key"]', 'headers["api_key"]', 'headers["im-authorization"]', 'headers.authorization',
        'headers["im-client-key"]', 'headers["client_key"]', 'headers.cookie', 'token', 'apiKey', 'clientKey', 'secret',
        '*.token', '*.apiKey', '*.clientKey', '*.secret', 'operatorSecret', 'redisUrl',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** What of an error may be logged: never its own properties beyond these. */
export function describeError(err: unknown): { name: string; message: string; code?: string; stack?: string } {
  if (!(err instanceof Error)) return { name: 'NonError', message: typeof err === 'string' ? err : typeof err };
  const code = (err as NodeJS.ErrnoException).code;
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}), stack: err.stack };
}
