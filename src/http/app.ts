import type { Config } from '../config.js';
import type { Core } from '../core/core.js';
import { Errors, ImError, isImError } from '../core/errors.js';
import type { Actor } from '../core/identity.js';
import { secretsEqual } from '../core/secrets.js';
import type { Logger } from '../observability/logger.js';
import { credentialsFromHeaders } from './credentials.js';
import { fail, ok } from './envelope.js';
import { type RouteContext, type RouteDef, parseJsonBody } from './route.js';
import { Router } from './router.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { meRoutes } from './routes/me.js';
import { moderationRoutes } from './routes/moderation.js';
import { operatorRoutes } from './routes/operator.js';
import { roomRoutes } from './routes/rooms.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

export const ALL_ROUTES: RouteDef[] = [...healthRoutes, ...operatorRoutes, ...adminRoutes, ...meRoutes, ...roomRoutes, ...moderationRoutes];

const CORS_ALLOW_HEADERS =
  'IM-Authorization, IM-Client-Key, IM-API-KEY, IM-Device-ID, IM-CLIENT-ID, x-timezone, accept-language, content-type, Authorization';

/** Turns REST requests into core calls: CORS, credentials, routing, envelopes, errors. */
export function createHttpHandler(core: Core, config: Config, log: Logger, routes: RouteDef[] = ALL_ROUTES): HttpHandler {
  const router = new Router<RouteDef>();
  for (const route of routes) router.add(route.method, route.path, route);

  const corsHeaders = (req: HttpRequest): Record<string, string> => {
    const origin = req.headers.origin;
    if (config.corsOrigins.includes('*')) return { 'access-control-allow-origin': '*' };
    if (origin && config.corsOrigins.includes(origin)) return { 'access-control-allow-origin': origin, vary: 'Origin' };
    return {};
  };

  const checkOperator = (req: HttpRequest): void => {
    if (!config.operatorSecret) throw Errors.operatorDisabled();
    const presented = req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? '';
    if (!secretsEqual(presented, config.operatorSecret)) throw Errors.invalidOperatorSecret();
  };

  const dispatch = async (req: HttpRequest): Promise<HttpResponse> => {
    if (req.method === 'OPTIONS') {
      return {
        status: 204,
        headers: {
          'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
          'access-control-allow-headers': CORS_ALLOW_HEADERS,
          'access-control-max-age': '600',
        },
        body: '',
      };
    }
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const match = router.match(method, req.path);
    if (match === 'method') throw Errors.methodNotAllowed();
    if (!match) throw Errors.notFound('ROUTE', `${req.method} ${req.path}`);
    const route = match.handler;
    let actor: Actor | undefined;
    if (route.auth === 'actor') actor = await core.identity.authenticate(credentialsFromHeaders(req.headers, config.trustProxy));
    if (route.auth === 'operator') checkOperator(req);
    let parsed: { value: unknown } | undefined;
    const ctx: RouteContext = {
      req,
      params: match.params,
      actor: actor!,
      core,
      config,
      body: () => (parsed ??= { value: parseJsonBody(req.body) }).value,
    };
    if ('raw' in route) return route.handle(ctx);
    return ok(await route.handle(ctx));
  };

  return async (req) => {
    let res: HttpResponse;
    try {
      res = await dispatch(req);
    } catch (err) {
      if (isImError(err)) {
        res = fail(err);
      } else {
        log.error({ err, method: req.method, path: req.path }, 'unhandled error in request');
        res = fail(Errors.internal());
      }
    }
    Object.assign(res.headers, corsHeaders(req));
    if (req.method === 'HEAD') res.body = '';
    return res;
  };
}

/** The 413 adapters answer before a handler runs, for bodies over the limit. */
export function bodyTooLarge(limit: number): ImError {
  return Errors.bodyTooLarge(limit);
}
