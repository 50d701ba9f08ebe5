import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import type { Bus } from '../bus/bus.js';
import { CONTROL_TOPIC } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { AppRecord } from './models.js';
import { newId, randomBase64, randomBase64Url, secretsEqual, sha256 } from './secrets.js';
import { type Clock, systemClock } from './clock.js';
import type { Actor } from './identity.js';
import { authorize } from './permissions.js';

export interface NewApp {
  app: AppRecord;
  /** Shown once: only its hash is stored. */
  apiKey: string;
  clientKey: string;
}

/** Claims of a client key. Deliberately no API key inside (IMKIT's sample embeds it; it is public). */
interface ClientKeyClaims {
  appId: string;
  createAt: number;
}

const MAX_VERIFIED_CACHE = 10_000;

/**
 * Applications and their two application-level credentials: the secret API key and the
 * public client key (a JWT, one per application at a time).
 */
export class AppService {
  /** HMAC key per application, built once from its signing secret. */
  private keys = new Map<string, { secret: string; key: Uint8Array }>();
  /** Client keys whose signature has been checked → app id. A signature never changes; revocation is checked per use. */
  private verifiedClientKeys = new Map<string, string>();
  /** hostname → app id, for CLIENT_KEY_MISMATCH on shared hosts. */
  private domainIndex = new Map<string, string>();

  constructor(
    private store: Store,
    private bus: Bus,
    private clock: Clock = systemClock,
  ) {}

  async start(): Promise<void> {
    await this.rebuildDomainIndex();
  }

  async createApp(input: { name: string; domains?: string[]; id?: string }): Promise<NewApp> {
    const apiKey = randomBase64(32);
    const app: AppRecord = {
      id: input.id ?? newId(),
      name: input.name,
      domains: (input.domains ?? []).map((d) => d.toLowerCase()),
      apiKeyHash: sha256(apiKey),
      signingSecret: randomBase64Url(32),
      clientKey: null,
      createdAt: this.clock.now(),
    };
    await this.store.putApp(app);
    const withKey = await this.generateClientKey(app.id);
    await this.rebuildDomainIndex();
    this.bus.publish(CONTROL_TOPIC, { kind: 'apps-changed' });
    return { app: withKey, apiKey, clientKey: withKey.clientKey!.token };
  }

  /** Oldest first (ids are random, so their order means nothing). */
  async listApps(): Promise<AppRecord[]> {
    return (await this.store.listApps()).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async getApp(appId: string): Promise<AppRecord> {
    const app = await this.store.getApp(appId);
    if (!app) throw Errors.notFound('APP', appId);
    return app;
  }

  async deleteApp(appId: string): Promise<void> {
    if (!(await this.store.deleteApp(appId))) throw Errors.notFound('APP', appId);
    this.keys.delete(appId);
    await this.rebuildDomainIndex();
    this.bus.publish(CONTROL_TOPIC, { kind: 'app-deleted', appId });
  }

  /** Application settings the API key may change: name, domains, allowed web origins. */
  async updateSettings(appId: string, settings: { name?: string; domains?: string[]; allowedOrigins?: string[] }): Promise<AppRecord> {
    const app = await this.store.updateApp(appId, (a) => ({
      ...a,
      name: settings.name ?? a.name,
      domains: settings.domains?.map((d) => d.toLowerCase()) ?? a.domains,
      allowedOrigins: settings.allowedOrigins ?? a.allowedOrigins,
    }));
    if (!app) throw Errors.notFound('APP', appId);
    await this.rebuildDomainIndex();
    this.bus.publish(CONTROL_TOPIC, { kind: 'apps-changed' });
    return app;
  }

  // ---- what the application's administrator (API key) may see and change ----

  /** `GET /admin/client-key`. */
  async clientKeyOf(actor: Actor) {
    authorize(actor, 'app.settings');
    const app = await this.getApp(actor.app.id);
    if (!app.clientKey) return { clientKey: null };
    return { clientKey: app.clientKey.token, createdAt: new Date(app.clientKey.createdAt).toISOString(), createdAtMS: app.clientKey.createdAt };
  }

  /** `POST /admin/client-key`: refused while one is active. */
  async newClientKey(actor: Actor) {
    authorize(actor, 'app.settings');
    const app = await this.generateClientKey(actor.app.id);
    return { clientKey: app.clientKey!.token, createdAtMS: app.clientKey!.createdAt };
  }

  /** `DELETE /admin/client-key`: every client-key request then fails, live sockets are cut. */
  async revokeClientKeyOf(actor: Actor) {
    authorize(actor, 'app.settings');
    await this.revokeClientKey(actor.app.id);
    return { revoked: true };
  }

  /** `GET /admin/settings`. */
  async settingsOf(actor: Actor): Promise<AppRecord> {
    authorize(actor, 'app.settings');
    return this.getApp(actor.app.id);
  }

  /** `PUT /admin/settings`. */
  async changeSettings(actor: Actor, settings: { name?: string; domains?: string[]; allowedOrigins?: string[] }): Promise<AppRecord> {
    authorize(actor, 'app.settings');
    return this.updateSettings(actor.app.id, settings);
  }

  /**
   * The existing application a refused credential claims to belong to (the client key's
   * unverified `appId`, or the host's application), so refusals can be metered per key.
   */
  async claimedAppId(clientKey: string | undefined, host: string | undefined): Promise<string | undefined> {
    let claimed: unknown;
    try {
      claimed = clientKey ? decodeJwt(clientKey).appId : undefined;
    } catch {
      claimed = undefined;
    }
    const candidate = typeof claimed === 'string' ? claimed : host ? this.appForHost(host) : undefined;
    return candidate && (await this.store.getApp(candidate)) ? candidate : undefined;
  }

  /** The HMAC key of an application (client keys and server-issued user tokens). */
  signingKey(app: AppRecord): Uint8Array {
    const cached = this.keys.get(app.id);
    if (cached && cached.secret === app.signingSecret) return cached.key;
    const key = new Uint8Array(Buffer.from(app.signingSecret, 'base64url'));
    this.keys.set(app.id, { secret: app.signingSecret, key });
    return key;
  }

  /** One key per application: refused while one is active. */
  async generateClientKey(appId: string): Promise<AppRecord> {
    const app = await this.getApp(appId);
    if (app.clientKey) throw Errors.clientKeyActive();
    const createAt = this.clock.now();
    const kid = newId();
    const claims: ClientKeyClaims = { appId: app.id, createAt };
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setJti(kid)
      .sign(this.signingKey(app));
    // Set only if still none: of two concurrent generations one wins, the other is told.
    const saved = await this.store.updateApp(appId, (a) => (a.clientKey ? undefined : { ...a, clientKey: { kid, token, createdAt: createAt }, fileSecret: randomBase64Url(32) }));
    if (!saved) throw Errors.notFound('APP', appId);
    if (saved.clientKey?.kid !== kid) throw Errors.clientKeyActive();
    return saved;
  }

  async revokeClientKey(appId: string): Promise<void> {
    let had = false;
    const saved = await this.store.updateApp(appId, (a) => {
      had = a.clientKey !== null;
      return had ? { ...a, clientKey: null } : undefined;
    });
    if (!saved) throw Errors.notFound('APP', appId);
    if (!had) throw Errors.noClientKey();
    this.bus.publish(CONTROL_TOPIC, { kind: 'client-key-revoked', appId });
  }

  /** The application a client key names; INVALID_CLIENT_KEY for bad signature, unknown app or revoked key. */
  async verifyClientKey(token: string): Promise<AppRecord> {
    let appId = this.verifiedClientKeys.get(token);
    if (appId === undefined) {
      appId = await this.verifySignature(token);
      if (this.verifiedClientKeys.size >= MAX_VERIFIED_CACHE) this.verifiedClientKeys.clear();
      this.verifiedClientKeys.set(token, appId);
    }
    const app = await this.store.getApp(appId);
    // Revoked (no key) or replaced (another key): the presented key is no longer the app's.
    if (!app || !app.clientKey || !secretsEqual(app.clientKey.token, token)) throw Errors.invalidClientKey();
    return app;
  }

  private async verifySignature(token: string): Promise<string> {
    let appId: unknown;
    try {
      appId = decodeJwt(token).appId;
    } catch {
      throw Errors.invalidClientKey();
    }
    if (typeof appId !== 'string') throw Errors.invalidClientKey();
    const app = await this.store.getApp(appId);
    if (!app) throw Errors.invalidClientKey();
    try {
      await jwtVerify(token, this.signingKey(app), { algorithms: ['HS256'] });
    } catch {
      throw Errors.invalidClientKey();
    }
    return appId;
  }

  /** The application an API key belongs to; INVALID_API_KEY otherwise. */
  async verifyApiKey(apiKey: string): Promise<AppRecord> {
    const hash = sha256(apiKey);
    const app = await this.store.getAppByApiKeyHash(hash);
    if (!app || !secretsEqual(app.apiKeyHash, hash)) throw Errors.invalidApiKey();
    return app;
  }

  /** The application that claims this hostname as one of its domains, if any. */
  appForHost(host: string): string | undefined {
    return this.domainIndex.get(host);
  }

  /** Rebuilds the host → application index (after another node created or deleted one). */
  async rebuildDomainIndex(): Promise<void> {
    const index = new Map<string, string>();
    for (const app of await this.store.listApps()) for (const d of app.domains) index.set(d, app.id);
    this.domainIndex = index;
  }
}
