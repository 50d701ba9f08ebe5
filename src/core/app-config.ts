import { z } from 'zod';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import { authorize } from './permissions.js';
import { parseInput } from './validate.js';

/** How long a node trusts its copy of an application's censored words (other nodes' changes show within this). */
const CENSOR_CACHE_MS = 2_000;
const MAX_CONFIG_BYTES = 256 * 1024;
const MAX_KEYWORDS = 1_000;

/**
 * IMKIT's runtime configuration (api-doc config/*.md): free-form top-level keys such as
 * `announcement {text, pin}`, `censorship {keywords}` and feature flags. Users read it
 * (`GET /config`); the API key merges keys in (`POST /config`) and deletes them
 * (`DELETE /config/:key`). `censorship.keywords` is enforced on send: each occurrence in a
 * text message is masked with `*` (IMKIT documents the list, not the enforcement).
 */
/** `POST /config`: an object of configuration keys, merged into the application's configuration. */
const configSchema = z.record(z.string(), z.unknown());

export class ConfigService {
  private censors = new Map<string, { at: number; mask: (text: string) => string }>();

  constructor(private store: Store) {}

  async get(actor: Actor): Promise<Record<string, unknown>> {
    authorize(actor, 'config.read');
    return this.read(actor.app.id);
  }

  /** Merges the body's top-level keys into the configuration (compare-and-set on the app record). */
  async update(actor: Actor, body: unknown): Promise<Record<string, unknown>> {
    authorize(actor, 'app.settings');
    const input = parseInput(configSchema, body);
    for (const key of Object.keys(input)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw Errors.invalidInput(`${key}: not a configuration key`);
    }
    checkCensorship(input.censorship);
    const app = await this.store.updateApp(actor.app.id, (a) => {
      const config = { ...a.config, ...input };
      if (Buffer.byteLength(JSON.stringify(config)) > MAX_CONFIG_BYTES) throw Errors.invalidInput(`body: the configuration may be at most ${MAX_CONFIG_BYTES} bytes`);
      return { ...a, config };
    });
    if (!app) throw Errors.notFound('APP', actor.app.id);
    this.censors.delete(app.id);
    return app.config ?? {};
  }

  async remove(actor: Actor, key: string): Promise<Record<string, never>> {
    authorize(actor, 'app.settings');
    await this.store.updateApp(actor.app.id, (a) => {
      if (!a.config || !Object.hasOwn(a.config, key)) return undefined;
      const { [key]: _gone, ...rest } = a.config;
      return { ...a, config: rest };
    });
    this.censors.delete(actor.app.id);
    return {};
  }

  /** The text with the application's censored words masked (cached per node for CENSOR_CACHE_MS). */
  async censor(appId: string, text: string): Promise<string> {
    let entry = this.censors.get(appId);
    if (!entry || Date.now() - entry.at > CENSOR_CACHE_MS) {
      const config = await this.read(appId);
      entry = { at: Date.now(), mask: masker(keywordsOf(config.censorship)) };
      this.censors.set(appId, entry);
    }
    return entry.mask(text);
  }

  private async read(appId: string): Promise<Record<string, unknown>> {
    return (await this.store.getApp(appId))?.config ?? {};
  }
}

function keywordsOf(censorship: unknown): string[] {
  if (!censorship || typeof censorship !== 'object') return [];
  const list = (censorship as { keywords?: unknown }).keywords;
  return Array.isArray(list) ? list.filter((k): k is string => typeof k === 'string' && k.trim() !== '') : [];
}

function checkCensorship(censorship: unknown): void {
  if (censorship === undefined) return;
  const list = censorship && typeof censorship === 'object' ? (censorship as { keywords?: unknown }).keywords : undefined;
  if (list === undefined) return;
  if (!Array.isArray(list) || list.length > MAX_KEYWORDS || !list.every((k) => typeof k === 'string' && k.length <= 100)) {
    throw Errors.invalidInput(`censorship.keywords: an array of at most ${MAX_KEYWORDS} strings of up to 100 characters`);
  }
}

/** One case-insensitive pass over the text; keywords are escaped literals, longest first. */
function masker(keywords: string[]): (text: string) => string {
  if (keywords.length === 0) return (text) => text;
  const escaped = [...new Set(keywords)].sort((a, b) => b.length - a.length).map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'giu');
  return (text) => text.replace(pattern, (word) => '*'.repeat([...word].length));
}

/** The request bodies this service validates (routes reference them for the protocol reference). */
export const configInputs = { update: configSchema };
