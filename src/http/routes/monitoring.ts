import { Errors } from '../../core/errors.js';
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
    handle: async ({ core, actor, req }) => {
      if (actor.kind !== 'admin') throw Errors.apiKeyRequired('Connection counts');
      const presence = core.presence;
      const userId = req.query.get('client') || undefined;
      const scope = req.query.get('scope') || 'cluster';
      if (scope === 'node') {
        return { count: presence.localConnectionCount(actor.app.id, userId), scope, node: presence.nodeId, ...(userId ? { client: userId } : {}) };
      }
      if (scope !== 'cluster') throw Errors.invalidInput("scope: 'cluster' or 'node'");
      const count = userId === undefined ? await presence.connectionCount(actor.app.id) : await presence.userConnectionCount(actor.app.id, userId);
      return { count, scope, ...(userId ? { client: userId } : {}) };
    },
  },
];
