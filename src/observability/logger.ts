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
