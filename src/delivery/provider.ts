import type { DeliverySettings, DeviceRecord } from '../core/models.js';
import type { Notification } from './notification.js';

/** What became of one device's notification. */
export type SendResult =
  | { ok: true }
  /** `invalidToken`: the provider says the token is dead (remove the device); `retry`: try again later. */
  | { ok: false; invalidToken: boolean; retry: boolean; error: string };

/** A push service for some device types (APNs, FCM). */
export interface PushProvider {
  /** Whether the application has this provider configured for the device's type. */
  handles(settings: DeliverySettings, device: DeviceRecord): boolean;
  send(settings: DeliverySettings, device: DeviceRecord, notification: Notification): Promise<SendResult>;
  close(): void;
}

export const retryable = (error: string): SendResult => ({ ok: false, invalidToken: false, retry: true, error });
export const permanent = (error: string): SendResult => ({ ok: false, invalidToken: false, retry: false, error });
export const invalidToken = (error: string): SendResult => ({ ok: false, invalidToken: true, retry: false, error });

/** Errors from sockets and timeouts, without anything secret (no URLs with credentials, no keys). */
export const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 300);
