import http2 from 'node:http2';
import { SignJWT, importPKCS8 } from 'jose';
import type { DeliverySettings, DeviceRecord } from '../core/models.js';
import { apnsBody, type Notification } from './notification.js';
import { describe, invalidToken, permanent, type PushProvider, retryable, type SendResult } from './provider.js';

const PRODUCTION = 'https://api.push.apple.com';
const SANDBOX = 'https://api.sandbox.push.apple.com';
/** Apple accepts a provider token for an hour and refuses new ones more often than every 20 minutes. */
const TOKEN_REUSE_MS = 40 * 60_000;

export interface ApnsOptions {
  /** Overrides Apple's host (ROOMCAST_APNS_URL). */
  url?: string;
  timeoutMs: number;
  ca?: string;
}

/**
 * APNs over HTTP/2 with token-based authentication: an ES256 JWT (`kid` = key id, `iss` =
 * team id, `iat`) signed with the application's .p8 key, reused for 40 minutes; one
 * multiplexed HTTP/2 session per host.
 */
export class ApnsProvider implements PushProvider {
  private sessions = new Map<string, http2.ClientHttp2Session>();
  private tokens = new Map<string, { jwt: string; at: number }>();

  constructor(private options: ApnsOptions) {}

  handles(settings: DeliverySettings, device: DeviceRecord): boolean {
    return settings.apns !== undefined && (device.type === 'ios' || device.type === 'ios-voip');
  }

  async send(settings: DeliverySettings, device: DeviceRecord, n: Notification): Promise<SendResult> {
    const apns = settings.apns!;
    const voip = device.type === 'ios-voip';
    let jwt: string;
    try {
      jwt = await this.providerToken(apns);
    } catch (err) {
      return permanent(`APNs key: ${describe(err)}`);
    }
    const topic = (n.topic ?? apns.topic) + (voip ? '.voip' : '');
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': `/3/device/${encodeURIComponent(device.token)}`,
      authorization: `bearer ${jwt}`,
      'apns-topic': topic,
      'apns-push-type': voip ? 'voip' : 'alert',
      'apns-priority': '10',
      'content-type': 'application/json',
    };
    if (n.expiry !== undefined) headers['apns-expiration'] = String(n.expiry);
    if (n.collapseKey !== undefined) headers['apns-collapse-id'] = n.collapseKey.slice(0, 64);
    let reply: { status: number; text: string };
    try {
      reply = await this.request(this.origin(apns.sandbox), headers, apnsBody(n, voip));
    } catch (err) {
      return retryable(`APNs: ${describe(err)}`);
    }
    if (reply.status === 200) return { ok: true };
    const reason = parseReason(reply.text);
    const error = `APNs ${reply.status} ${reason}`;
    if (reply.status === 410 || reason === 'BadDeviceToken' || reason === 'DeviceTokenNotForTopic' || reason === 'Unregistered') return invalidToken(error);
    if (reply.status === 403 && /ProviderToken/.test(reason)) {
      this.tokens.delete(`${apns.teamId}/${apns.keyId}`);
      return retryable(error);
    }
    if (reply.status === 429 || reply.status >= 500) return retryable(error);
    return permanent(error);
  }

  close(): void {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
  }

  private origin(sandbox: boolean | undefined): string {
    return this.options.url || (sandbox ? SANDBOX : PRODUCTION);
  }

  private async providerToken(apns: NonNullable<DeliverySettings['apns']>): Promise<string> {
    const cacheKey = `${apns.teamId}/${apns.keyId}`;
    const cached = this.tokens.get(cacheKey);
    if (cached && Date.now() - cached.at < TOKEN_REUSE_MS) return cached.jwt;
    const key = await importPKCS8(apns.privateKey, 'ES256');
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: apns.keyId }).setIssuer(apns.teamId).setIssuedAt().sign(key);
    this.tokens.set(cacheKey, { jwt, at: Date.now() });
    return jwt;
  }

  private session(origin: string): http2.ClientHttp2Session {
    let s = this.sessions.get(origin);
    if (s && !s.closed && !s.destroyed) return s;
    s = http2.connect(origin, { ca: this.options.ca });
    const session = s;
    const forget = () => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin);
    };
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    session.unref();
    this.sessions.set(origin, session);
    return session;
  }

  private request(origin: string, headers: http2.OutgoingHttpHeaders, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = this.session(origin).request(headers);
      } catch (err) {
        reject(err);
        return;
      }
      let status = 0;
      let text = '';
      req.setEncoding('utf8');
      req.setTimeout(this.options.timeoutMs, () => req.close(http2.constants.NGHTTP2_CANCEL));
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: string) => (text += c));
      req.on('end', () => (status ? resolve({ status, text }) : reject(new Error('no response'))));
      req.on('close', () => {
        if (!status) reject(new Error(`no response within ${this.options.timeoutMs} ms`));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

function parseReason(text: string): string {
  try {
    const reason = (JSON.parse(text) as { reason?: unknown }).reason;
    return typeof reason === 'string' ? reason : '';
  } catch {
    return '';
  }
}
