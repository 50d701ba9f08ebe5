import { createHmac } from 'node:crypto';

/** Headers of a signed webhook request (README: Webhooks). */
export const SIGNATURE_HEADER = 'x-roomcast-signature';
export const TIMESTAMP_HEADER = 'x-roomcast-timestamp';
export const DELIVERY_HEADER = 'x-roomcast-delivery';

/**
 * `v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` under the application's webhook secret.
 * The timestamp (Unix seconds) is signed with the body, so a receiver that rejects old
 * timestamps cannot be fed a replayed request.
 */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
