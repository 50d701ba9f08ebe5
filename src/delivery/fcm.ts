import { SignJWT, importPKCS8 } from 'jose';
import type { DeliverySettings, DeviceRecord } from '../core/models.js';
import { post } from './http.js';
import { fcmBody, type Notification } from './notification.js';
import { describe, invalidToken, permanent, type PushProvider, retryable, type SendResult } from './provider.js';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

export interface FcmOptions {
  /** https://fcm.googleapis.com unless configured (ROOMCAST_FCM_BASE_URL). */
  baseUrl: string;
  /** Overrides the service account's token_uri (ROOMCAST_FCM_TOKEN_URL). */
  tokenUrl?: string;
  timeoutMs: number;
  ca?: string;
}

type Fcm = NonNullable<DeliverySettings['fcm']>;

/**
 * FCM HTTP v1 with a service account: an RS256 JWT assertion (`iss` = client_email, `scope`,
 * `aud` = the token endpoint, one hour) is exchanged at the OAuth token endpoint
 * (grant_type jwt-bearer) for an access token, cached until shortly before it expires.
 */
export class FcmProvider implements PushProvider {
  private tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(private options: FcmOptions) {}

  handles(settings: DeliverySettings, device: DeviceRecord): boolean {
    return settings.fcm !== undefined && (device.type === 'fcm' || device.type === 'android' || device.type === 'web');
  }

  async send(settings: DeliverySettings, device: DeviceRecord, n: Notification): Promise<SendResult> {
    const fcm = settings.fcm!;
    let bearer: string;
    try {
      bearer = await this.accessToken(fcm);
    } catch (err) {
      return retryable(`FCM OAuth: ${describe(err)}`);
    }
    const url = `${this.options.baseUrl.replace(/\/$/, '')}/v1/projects/${encodeURIComponent(fcm.projectId)}/messages:send`;
    let reply;
    try {
      reply = await post(url, fcmBody(device.token, n), { authorization: `Bearer ${bearer}`, 'content-type': 'application/json; charset=UTF-8' }, this.options.timeoutMs, this.options.ca);
    } catch (err) {
      return retryable(`FCM: ${describe(err)}`);
    }
    if (reply.status === 200) return { ok: true };
    const code = errorCode(reply.text);
    const error = `FCM ${reply.status} ${code}`;
    if (code === 'UNREGISTERED' || code === 'SENDER_ID_MISMATCH') return invalidToken(error);
    if (reply.status === 401) {
      this.tokens.delete(fcm.clientEmail);
      return retryable(error);
    }
    if (reply.status === 429 || reply.status >= 500) return retryable(error);
    return permanent(error);
  }

  close(): void {}

  private async accessToken(fcm: Fcm): Promise<string> {
    const cached = this.tokens.get(fcm.clientEmail);
    if (cached && cached.expiresAt > Date.now() + 60_000) return cached.token;
    const tokenUrl = this.options.tokenUrl || fcm.tokenUri || GOOGLE_TOKEN_URI;
    const key = await importPKCS8(fcm.privateKey, 'RS256');
    const assertion = await new SignJWT({ scope: SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(fcm.privateKeyId ? { kid: fcm.privateKeyId } : {}) })
      .setIssuer(fcm.clientEmail)
      .setAudience(tokenUrl)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key);
    const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
    const reply = await post(tokenUrl, form, { 'content-type': 'application/x-www-form-urlencoded' }, this.options.timeoutMs, this.options.ca);
    if (reply.status !== 200) throw new Error(`token endpoint answered ${reply.status}`);
    const body = JSON.parse(reply.text) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== 'string') throw new Error('token endpoint gave no access_token');
    const ttl = typeof body.expires_in === 'number' ? body.expires_in : 3600;
    this.tokens.set(fcm.clientEmail, { token: body.access_token, expiresAt: Date.now() + ttl * 1000 });
    return body.access_token;
  }
}

/** FCM v1 errors: `{error: {status, details: [{errorCode}]}}`; the FcmError code wins. */
function errorCode(text: string): string {
  try {
    const error = (JSON.parse(text) as { error?: { status?: string; details?: { errorCode?: string }[] } }).error;
    return error?.details?.find((d) => typeof d.errorCode === 'string')?.errorCode ?? error?.status ?? '';
  } catch {
    return '';
  }
}
