import type { Config } from '../config.js';
import type { Core } from '../core/core.js';
import { Errors, isImError } from '../core/errors.js';
import type { Actor } from '../core/identity.js';
import { newId, secretsEqual } from '../core/secrets.js';
import { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../observability/logger.js';
import { CORS_ALLOW_HEADERS, corsHeaders } from './cors.js';
import { credentialsFromHeaders, normaliseToken } from '../credentials.js';
import { isEngineIoPath } from '../realtime/protocol/engineio.js';
import { fail, ok } from './envelope.js';
import { type RouteContext, type RouteDef, parseJsonBody } from './route.js';
import { Router } from './router.js';
import { adminRoutes } from './routes/admin.js';
import { adminOpRoutes } from './routes/admin-ops.js';
import { fileRoutes } from './routes/files.js';
import { healthRoutes } from './routes/health.js';
import { invitationRoutes } from './routes/invitations.js';
import { meRoutes } from './routes/me.js';
import { messageActionRoutes } from './routes/message-actions.js';
import { moderationRoutes } from './routes/moderation.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { operatorRoutes } from './routes/operator.js';
import { prefRoutes } from './routes/prefs.js';
import { roomRoutes } from './routes/rooms.js';
import { searchRoutes } from './routes/search.js';
import { referenceRoutes } from './routes/reference.js';
import { usageRoutes } from './routes/usage.js';
import { Members, Metric } from '../metering/meter.js';
import { type HttpRequest, type HttpResponse, type HttpService, isStreamBody } from './types.js';

export const ALL_ROUTES: RouteDef[] = [
  ...healthRoutes, ...operatorRoutes, ...adminRoutes, ...meRoutes, ...roomRoutes, ...moderationRoutes, ...monitoringRoutes, ...fileRoutes, ...usageRoutes,
  ...prefRoutes, ...messageActionRoutes, ...searchRoutes, ...invitationRoutes, ...adminOpRoutes,
  ...referenceRoutes(() => ALL_ROUTES),
];

/**
 * What dispatching learnt of a request, for what follows it: who made it (metering attributes
 * REST usage to their application) and the matched route pattern (logs name the pattern,
 * never a path that may carry ids or links). A plain object per request, not WeakMaps keyed
 * by it: every WeakMap entry is an ephemeron the young-generation GC must process.
 */
interface Dispatched {
  caller?: Actor;
  pattern?: string;
}

/** Serves the Engine.IO path over plain HTTP (long-polling, realtime/polling.ts). */
export interface EngineIoHttp {
  handle(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
}

/**
 * Turns REST requests into core calls: CORS, credentials, routing, envelopes, errors. Requests
 * on the Engine.IO path go to `engineIo` (CORS and preflight included), or 404 without it.
 */
export function createHttpService(
  core: Core,
  config: Config,
  log: Logger,
  routes: RouteDef[] = ALL_ROUTES,
  lifecycle: Lifecycle = new Lifecycle(),
  engineIo?: EngineIoHttp,
): HttpService {
  const router = new Router<RouteDef>();
  for (const route of routes) router.add(route.method, route.path, route);

  const checkOperator = (req: HttpRequest): void => {
    if (!config.operatorSecret) throw Errors.operatorDisabled();
    const presented = normaliseToken(req.headers.authorization) ?? '';
    if (!secretsEqual(presented, config.operatorSecret)) throw Errors.invalidOperatorSecret();
  };

  const dispatch = async (req: HttpRequest, seen: Dispatched): Promise<HttpResponse> => {
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
    if (engineIo && isEngineIoPath(req.path)) return engineIo.handle(req);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const match = router.match(method, req.path);
    if (match === 'method') throw Errors.methodNotAllowed();
    if (!match) throw Errors.notFound('ROUTE', `${req.method} ${req.path}`);
    const route = match.handler;
    seen.pattern = route.path;
    const authenticate = async () => {
      const who = await core.identity.authenticate(credentialsFromHeaders(req.headers, config.trustProxy));
      seen.caller = who;
      // Per API key (IMKIT: 1000/min by default) and per user.
      await core.rateLimits.check(who);
      return who;
    };
    let parsed: { value: unknown } | undefined;
    const ctx: RouteContext = {
      req,
      params: match.params,
      core,
      config,
      lifecycle,
      body: () => (parsed ??= { value: parseJsonBody(req.body, core.limits) }).value,
      authenticate,
    };
    let result: unknown;
    if (route.auth === 'actor') {
      const actor = await authenticate();
      result = await route.handle({ ...ctx, actor });
      if (route.meter) core.usage.meter.count(actor.app.id, route.meter);
    } else {
      if (route.auth === 'operator') checkOperator(req);
      result = await route.handle(ctx);
    }
    return route.raw ? (result as HttpResponse) : ok(result);
  };

  const streamsBody = (method: string, path: string): boolean => {
    const match = router.match(method, path);
    return typeof match === 'object' && match.handler.streamBody === true;
  };

  /** CORS for every answer, including those the adapters write themselves (413 before routing). */
  const refusalHeaders = (req: HttpRequest): Record<string, string> =>
    corsHeaders(config.corsOrigins, req.headers.origin, engineIo !== undefined && isEngineIoPath(req.path));

  const handle = (req: HttpRequest): Promise<HttpResponse> => lifecycle.track(() => handleOne(req));

  const handleOne = async (req: HttpRequest): Promise<HttpResponse> => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    const seen: Dispatched = {};
    let res: HttpResponse;
    try {
      res = await dispatch(req, seen);
    } catch (err) {
      if (isImError(err)) {
        res = fail(err);
        // 5xx refusals from the catalogue (store unavailable, …) are server trouble: say why.
        if (err.status >= 500) log.error({ requestId, code: err.code, cause: err.message, method: req.method, route: seen.pattern }, 'request failed');
      } else {
        log.error({ err, requestId, method: req.method, route: seen.pattern }, 'unhandled error in request');
        res = fail(Errors.internal());
      }
    }
    Object.assign(res.headers, refusalHeaders(req));
    res.headers['x-request-id'] = requestId;
    // Draining: no keep-alive, so the client's next request opens a connection to another node.
    if (lifecycle.draining) res.headers.connection = 'close';
    const caller = seen.caller;
    if (caller) meterRest(caller, req, res);
    // A streamed request body the handler did not consume must not hold the connection.
    if (req.stream && !req.stream.readableEnded) req.stream.resume();
    if (log.isLevelEnabled('debug')) {
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      log.debug({ requestId, method: req.method, route: seen.pattern ?? '(no route)', status: res.status, durationMs }, 'request');
    }
    return res;
  };

  const meterRest = (caller: Actor, req: HttpRequest, res: HttpResponse): void => {
    const meter = core.usage.meter;
    const appId = caller.app.id;
    meter.count(appId, caller.kind === 'admin' ? Metric.restApiKey : Metric.restClientKey);
    meter.count(appId, Metric.bytesIn, Number(req.headers['content-length'] ?? req.body.length) || 0);
    meter.count(appId, Metric.bytesOut, isStreamBody(res.body) ? res.body.length : Buffer.byteLength(res.body));
    if (caller.kind === 'user') meter.member(appId, Members.activeUsers, caller.userId);
  };

  return { handle, streamsBody, refusalHeaders };
}

/**
 * A caller's X-Request-Id when it looks like an id (so it can be followed across hops), else a
 * new one from the id pool (one entropy draw per 512 ids, not one per request).
 */
function requestIdOf(req: HttpRequest): string {
  const given = req.headers['x-request-id'];
  return given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : newId();
}
