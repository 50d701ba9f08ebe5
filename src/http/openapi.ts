/**
 * The REST half of the protocol reference: an OpenAPI 3.1 document built from the route table,
 * with request bodies generated from the very zod schemas the handlers validate with.
 */
import { z } from 'zod';
import type { RouteDef } from './route.js';

type Json = Record<string, unknown>;

const ERROR_ENVELOPE: Json = {
  type: 'object',
  description: "IMKIT's error envelope; RC repeats the HTTP status, error.code is stable (src/core/errors.ts)",
  required: ['RC', 'RM', 'error'],
  properties: {
    RC: { type: 'integer', examples: [401] },
    RM: { type: 'string' },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', examples: ['INVALID_TOKEN'] }, message: { type: 'string' } },
    },
  },
};

const SUCCESS_ENVELOPE: Json = {
  type: 'object',
  description: "IMKIT's success envelope",
  required: ['RC', 'RM', 'result'],
  properties: { RC: { const: 0 }, RM: { const: 'OK' }, result: {} },
};

const SECURITY_SCHEMES: Json = {
  apiKey: { type: 'apiKey', in: 'header', name: 'IM-API-KEY', description: "The application's API key (server side only)" },
  clientKey: { type: 'apiKey', in: 'header', name: 'IM-CLIENT-KEY', description: "The application's public client key" },
  userToken: { type: 'apiKey', in: 'header', name: 'IM-Authorization', description: "A user's token (sent with the client key)" },
  operator: { type: 'http', scheme: 'bearer', description: 'The operator secret (ROOMCAST_OPERATOR_SECRET)' },
};

/** `/rooms/:id/member/:client` → `/rooms/{id}/member/{client}` and the names of its parameters. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: converted, params };
}

function operationId(route: RouteDef): string {
  const words = route.path.split('/').filter(Boolean).map((part) => (part.startsWith(':') ? `by-${part.slice(1)}` : part));
  return [route.method.toLowerCase(), ...words]
    .join('-')
    .replace(/[^A-Za-z0-9]+(.)/g, (_, c: string) => c.toUpperCase());
}

/** The JSON Schema (2020-12, OpenAPI 3.1's dialect) of what a client may send. */
export function requestSchema(schema: z.ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

function requestBody(route: RouteDef): Json | undefined {
  if (route.streamBody) {
    return {
      required: true,
      content: {
        'multipart/form-data': {
          schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        },
      },
    };
  }
  if (!route.body) return undefined;
  // An empty body reads as {}: required when {} does not pass.
  return { required: !route.body.safeParse({}).success, content: { 'application/json': { schema: requestSchema(route.body) } } };
}

function security(route: RouteDef): Json[] | undefined {
  if (route.auth === 'operator') return [{ operator: [] }];
  if (route.auth === 'actor') return [{ apiKey: [] }, { clientKey: [], userToken: [] }];
  return undefined;
}

function operation(route: RouteDef): Json {
  const { params } = openApiPath(route.path);
  const parameters = [
    ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
    ...Object.entries(route.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } })),
  ];
  const body = requestBody(route);
  const auth = security(route);
  return {
    operationId: operationId(route),
    summary: route.summary,
    tags: [route.path.split('/')[1] ?? ''],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body ? { requestBody: body } : {}),
    ...(auth ? { security: auth } : {}),
    responses: route.raw
      ? { '200': { description: 'The resource itself (not enveloped)' }, default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } }
      : {
          '200': { description: 'OK', content: { 'application/json': { schema: { $ref: '#/components/schemas/Success' } } } },
          default: { description: 'Refused: a stable code in the error envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
  };
}

export function openApiDocument(routes: readonly RouteDef[], version: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const { path } = openApiPath(route.path);
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'roomcast — IMKIT REST protocol',
      version,
      description:
        'Every JSON answer is an envelope: {RC:0, RM:"OK", result} or {RC, RM, error:{code, message}}. The socket side (Socket.IO v4) is described in docs/protocol.md.',
    },
    servers: [{ url: '/' }],
    paths,
    components: { schemas: { Success: SUCCESS_ENVELOPE, Error: ERROR_ENVELOPE }, securitySchemes: SECURITY_SCHEMES },
  };
}
