import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Core } from '../core/core.js';
import { Errors } from '../core/errors.js';
import type { Actor } from '../core/identity.js';
import type { Lifecycle } from '../lifecycle.js';
import type { HttpRequest } from './types.js';
import { checkJsonLimits, type InputLimits } from '../core/limits.js';

/** What every route handler gets. */
export interface RouteContext {
  req: HttpRequest;
  params: Record<string, string>;
  core: Core;
  config: Config;
  /** Draining state (readiness) and in-flight requests. */
  lifecycle: Lifecycle;
  /** The JSON body; `{}` when empty; MALFORMED_JSON when it does not parse. */
  body(): unknown;
  /** For `public` routes that authenticate only in some cases (signed file links). */
  authenticate(): Promise<Actor>;
}

/** What a handler of an `auth: 'actor'` route gets: the caller, already authenticated. */
export interface ActorContext extends RouteContext {
  actor: Actor;
}

interface RouteBase {
  method: string;
  path: string;
  /** The handler returns a whole HttpResponse instead of a result for IMKIT's envelope. */
  raw?: boolean;
  /** The body is handed over as `req.stream` instead of being buffered (uploads). */
  streamBody?: boolean;
  /** A usage metric counted for the caller's application each time the route succeeds. */
  meter?: string;
  /** One line for the protocol reference (GET /openapi.json, /docs). */
  summary: string;
  /**
   * The zod schema the handler validates its JSON body with (the OpenAPI request body is
   * generated from it); `null` when the route reads no JSON body. Required on POST and PUT.
   */
  body?: z.ZodType | null;
  /** Query parameters the handler reads: name → meaning. */
  query?: Record<string, string>;
}

/** API key or client key + token, checked before the handler, which gets the caller. */
export interface ActorRoute extends RouteBase {
  auth: 'actor';
  handle(ctx: ActorContext): Promise<unknown>;
}

/** `operator`: the operator secret is checked first; `public`: no credentials. */
export interface OpenRoute extends RouteBase {
  auth: 'operator' | 'public';
  handle(ctx: RouteContext): Promise<unknown>;
}

export type RouteDef = ActorRoute | OpenRoute;

/** Integer query parameter with bounds; a bad value is a 400 naming the parameter. */
export function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw Errors.invalidInput(`${name}: must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A time as IMKIT clients send it: epoch ms or an ISO 8601 date; absent = undefined. */
export function timeParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw Errors.invalidInput(`${name}: not a time (epoch ms or ISO 8601)`);
  return ms;
}

/** The JSON body, refused (4xx) when it does not parse or breaks a limit on depth, lengths or fields. */
export function parseJsonBody(body: Buffer, limits: InputLimits): unknown {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw Errors.malformedJson();
  }
  checkJsonLimits(value, limits);
  return value;
}
