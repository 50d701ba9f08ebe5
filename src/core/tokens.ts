import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import type { Bus } from '../bus/bus.js';
import { CONTROL_TOPIC } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import type { AppService } from './apps.js';
import { Errors } from './errors.js';
import type { AppRecord, TokenRecord } from './models.js';
import { newId, sha256 } from './secrets.js';
import { type Clock, systemClock } from './clock.js';

const MAX_VERIFIED = 50_000;

/** Issuer claim that marks a JWT as minted by this server (customers may assign JWTs of their own). */
const ISSUER = 'roomcast';

export interface IssuedToken {
  token: string;
  expiresAt: number;
}

/**
 * User tokens (`IM-Authorization`). Server-issued tokens are HS256 JWTs with the `id` claim the
 * Vue SDK reads; assigned tokens are whatever string the customer chose. Both are stored only
 * as a sha256 hash, which is also what makes either kind revocable.
 */
export class TokenService {
  /**
   * Our JWTs whose signature has been checked → the application they were checked for and the
   * token's hash (the store's key), so a REST call with a known token hashes nothing.
   */
  private verifiedSignatures = new Map<string, { appId: string; hash: string }>();

  constructor(
    private store: Store,
    private bus: Bus,
    private apps: AppService,
    private defaultTtlMs: number,
    private clock: Clock = systemClock,
  ) {}

  async issue(app: AppRecord, userId: string, ttlMs = this.defaultTtlMs): Promise<IssuedToken> {
    const now = this.clock.now();
    // Whole seconds, so the stored expiry and the JWT's `exp` agree exactly.
    const expiresAt = Math.floor((now + ttlMs) / 1000) * 1000;
    const token = await new SignJWT({ id: userId, app: app.id })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(expiresAt / 1000)
      .setJti(newId())
      .sign(this.apps.signingKey(app));
    await this.replaceTokens(app, { hash: sha256(token), userId, expiresAt, issued: true, createdAt: now });
    return { token, expiresAt };
  }

  async assign(app: AppRecord, userId: string, token: string, expiresAt: number): Promise<IssuedToken> {
    const hash = sha256(token);
    const existing = await this.store.getToken(app.id, hash);
    if (existing && existing.userId !== userId) throw Errors.tokenConflict();
    await this.replaceTokens(app, { hash, userId, expiresAt, issued: false, createdAt: this.clock.now() });
    return { token, expiresAt };
  }

  /**
   * A new token replaces the user's older ones (IMKIT: "the old token will be invalidated"):
   * they are deleted before the new one is stored, and sockets that used them are cut.
   */
  private async replaceTokens(app: AppRecord, record: TokenRecord): Promise<void> {
    const gone = (await this.store.deleteTokens(app.id, record.userId)).filter((t) => t.hash !== record.hash);
    await this.store.putToken(app.id, record);
    this.announceRevoked(app, record.userId, gone);
  }

  private announceRevoked(app: AppRecord, userId: string, gone: TokenRecord[]): void {
    if (gone.length === 0) return;
    this.bus.publish(CONTROL_TOPIC, { kind: 'tokens-revoked', appId: app.id, userId, hashes: gone.map((t) => t.hash) });
  }

  /**
   * The user a token acts as. INVALID_TOKEN when unknown, expired or revoked;
   * CLIENT_KEY_MISMATCH when it is one of our tokens but minted for another application.
   */
  async verify(app: AppRecord, token: string): Promise<{ userId: string; hash: string; expiresAt: number }> {
    // A signature, once checked, stays valid: remember it (expiry and revocation are still
    // decided by the stored record below, on every use).
    let hash = this.verifiedSignatures.get(token)?.appId === app.id ? this.verifiedSignatures.get(token)!.hash : undefined;
    if (hash === undefined) {
      hash = sha256(token);
      const claims = peekClaims(token);
      if (claims?.iss === ISSUER) {
        if (claims.app !== app.id) throw Errors.clientKeyMismatch();
        try {
          await jwtVerify(token, this.apps.signingKey(app), { algorithms: ['HS256'], issuer: ISSUER, currentDate: new Date(this.clock.now()) });
        } catch {
          throw Errors.invalidToken();
        }
        if (this.verifiedSignatures.size >= MAX_VERIFIED) this.verifiedSignatures.clear();
        this.verifiedSignatures.set(token, { appId: app.id, hash });
      }
    }
    const record = await this.store.getToken(app.id, hash);
    if (!record || record.expiresAt <= this.clock.now()) throw Errors.invalidToken();
    return { userId: record.userId, hash, expiresAt: record.expiresAt };
  }

  /**
   * Revokes the user's tokens but one (`keep`, a hash): `/me/logout-others`. Tokens are
   * deleted one by one, so a token issued meanwhile replaces the kept one as usual.
   */
  async revokeAllBut(app: AppRecord, userId: string, keep: string): Promise<TokenRecord[]> {
    const gone: TokenRecord[] = [];
    for (const t of await this.store.listTokens(app.id, userId)) {
      if (t.hash !== keep) gone.push(...(await this.store.deleteTokens(app.id, userId, t.hash)));
    }
    this.announceRevoked(app, userId, gone);
    return gone;
  }

  /** Revokes one token by its hash (`/me/logout`: the caller's own); its sockets are cut. */
  async revokeHash(app: AppRecord, userId: string, hash: string): Promise<TokenRecord[]> {
    const gone = await this.store.deleteTokens(app.id, userId, hash);
    this.announceRevoked(app, userId, gone);
    return gone;
  }

  /** Revokes one token of the user, or all of them; live sockets using them are cut. */
  async revoke(app: AppRecord, userId: string, token?: string): Promise<TokenRecord[]> {
    const gone = await this.store.deleteTokens(app.id, userId, token === undefined ? undefined : sha256(token));
    this.announceRevoked(app, userId, gone);
    return gone;
  }
}

function peekClaims(token: string): Record<string, unknown> | undefined {
  if (token.split('.').length !== 3) return undefined;
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}
