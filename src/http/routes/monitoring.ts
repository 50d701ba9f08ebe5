import type { RouteDef } from '../route.js';

/**
 * Monitoring for the application's administrator (API key).
 *
 * `GET /admin/connection-count[?client=<userId>][&scope=cluster|node]`: authenticated sockets
 * of the application (or of one user) on every node (`cluster`, the default: one Redis read
 * in cluster mode) or on the node that answers (`node`, with its id).
 */
export const monitoringRoutes: RouteDef[] = [
  {
    method: 'GET', path: '/admin/connection-count', summary: 'Authenticated sockets of the application or one user', query: { client: 'one user id', scope: 'cluster (default) or node' }, auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.usage.connectionCount(actor, { userId: req.query.get('client') || undefined, scope: req.query.get('scope') || 'cluster' }),
  },
];
