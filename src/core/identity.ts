import type { AppService } from './apps.js';
import { Errors } from './errors.js';
import type { AppRecord } from './models.js';
import type { TokenService } from './tokens.js';

/** The application's administrator: the holder of the API key. */
export interface AdminActor {
  kind: 'admin';
  app: AppRecord;
}

/** A user acting through client key + token. */
export interface UserActor {
  kind: 'user';
  app: AppRecord;
  userId: string;
  /** Hash of the token used, so revoking that token can find the sockets it opened. */
  tokenHash: string;
  /** When that token expires (epoch ms): a socket opened with it is closed then. */
  expiresAt: number;
}

export type Actor = AdminActor | UserActor;

/** Credentials as presented, already pulled out of headers, query or socket arguments. */
export interface Credentials {
  apiKey?: string;
  clientKey?: string;
  token?: string;
  /** Hostname the request was addressed to (no port, lower case). */
  host?: string;
  /** The browser's Origin header, when there is one. */
  origin?: string;
}

/** Told of refusals worth metering per application. */
export interface RefusalRecorder {
  originRefused(appId: string, origin: string): void;
}

/**
 * The single handshake rule set, shared by REST and sockets:
 * API key → administrator; otherwise client key (required) + user token → that user.
 */
export class IdentityService {
  constructor(
    private apps: AppService,
    private tokens: TokenService,
    private refusals?: RefusalRecorder,
  ) {}

  async authenticate(creds: Credentials): Promise<Actor> {
    if (creds.apiKey) return { kind: 'admin', app: await this.apps.verifyApiKey(creds.apiKey) };
    return this.authenticateUser(creds);
  }

  /** Client key + token only (sockets act as users; the API key has no socket identity). */
  async authenticateUser(creds: Credentials): Promise<UserActor> {
    const app = await this.authenticateClientKey(creds);
    if (!creds.token) throw Errors.missingToken();
    const { userId, hash, expiresAt } = await this.tokens.verify(app, creds.token);
    return { kind: 'user', app, userId, tokenHash: hash, expiresAt };
  }

  /** The client key alone (host and origin checked): the application, with no user (sandbox sign-in). */
  async authenticateClientKey(creds: Credentials): Promise<AppRecord> {
    if (!creds.clientKey) throw Errors.missingClientKey();
    const app = await this.apps.verifyClientKey(creds.clientKey);
    this.checkHost(app, creds.host);
    this.checkOrigin(app, creds.origin);
    return app;
  }

  /** A browser origin outside the application's allow-list (when it has one) is refused. */
  private checkOrigin(app: AppRecord, origin: string | undefined): void {
    if (!origin || !app.allowedOrigins?.length || app.allowedOrigins.includes(origin)) return;
    this.refusals?.originRefused(app.id, origin);
    throw Errors.originNotAllowed(origin);
  }

  /** CLIENT_KEY_MISMATCH: the host belongs to another application, or is not one of this one's domains. */
  private checkHost(app: AppRecord, host: string | undefined): void {
    if (!host) return;
    const owner = this.apps.appForHost(host);
    if (owner !== undefined && owner !== app.id) throw Errors.clientKeyMismatch();
    if (app.domains.length > 0 && !app.domains.includes(host)) throw Errors.clientKeyMismatch();
  }
}
