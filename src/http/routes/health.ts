import { json } from '../envelope.js';
import type { RouteDef } from '../route.js';

/** Liveness and readiness, without auth (load balancers and the Docker HEALTHCHECK call them). */
export const healthRoutes: RouteDef[] = [
  { method: 'GET', path: '/healthz', summary: 'Liveness: 200 while the process runs', auth: 'public', raw: true, handle: async () => json(200, { status: 'ok' }) },
  {
    method: 'GET', path: '/readyz', summary: 'Readiness: 503 while draining or while the store or bus (Redis) is unreachable', auth: 'public', raw: true,
    handle: async ({ core, lifecycle }) => {
      // Draining fails readiness first, so balancers stop sending before the node stops accepting.
      if (lifecycle.draining) return json(503, { status: 'draining' });
      const ready = core.sessions.ready();
      return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    },
  },
];
