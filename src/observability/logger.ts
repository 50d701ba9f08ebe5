import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs. Credential headers are redacted by path as a second line of defence:
 * the code never logs a secret on purpose.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'roomcast' },
    redact: {
      paths: [
        'headers["im-api-key"]', 'headers["api_key"]', 'headers["im-authorization"]', 'headers.authorization',
        'headers["im-client-key"]', 'headers["client_key"]', 'token', 'apiKey', 'clientKey', '*.token', '*.apiKey',
      ],
      censor: '[redacted]',
    },
  });
}
