import { z } from 'zod';
import { parseInput } from '../../core/validate.js';
import type { RouteDef } from '../route.js';

const createAppSchema = z.object({
  name: z.string().trim().min(1).max(128),
  domains: z.array(z.string().trim().min(1).max(253)).max(100).optional(),
});

/** Operator endpoints: applications (tenants). Guarded by `Authorization: Bearer <operator secret>`. */
export const operatorRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/operator/apps', summary: 'Create an application (tenant); returns its API key and client key once', body: createAppSchema, auth: 'operator',
    handle: async ({ core, body }) => {
      const input = parseInput(createAppSchema, body());
      const { app, apiKey, clientKey } = await core.apps.createApp(input);
      return { id: app.id, name: app.name, domains: app.domains, apiKey, clientKey };
    },
  },
  {
    method: 'GET', path: '/operator/apps', summary: 'List applications', auth: 'operator',
    handle: async ({ core }) => ({
      data: (await core.apps.listApps()).map((app) => ({
        id: app.id,
        name: app.name,
        domains: app.domains,
        clientKey: app.clientKey?.token ?? null,
        createdAtMS: app.createdAt,
      })),
    }),
  },
  {
    method: 'DELETE', path: '/operator/apps/:id', summary: 'Delete an application and everything in it', auth: 'operator',
    handle: async ({ core, params }) => {
      await core.apps.deleteApp(params.id!);
      return { deleted: params.id };
    },
  },
];
