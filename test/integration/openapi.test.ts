import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_ROUTES } from '../../src/http/app.js';
import { openApiDocument, requestSchema } from '../../src/http/openapi.js';
import { startTestServer, type TestServer, TRANSPORTS } from '../helpers/server.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const doc = openApiDocument(ALL_ROUTES, VERSION) as { paths: Record<string, Record<string, any>> };
const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** The REST reference cannot drift from the routes: it is built from them, and checked here in CI. */
describe('the OpenAPI document', () => {
  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // …and the validator does reject a broken document (this check can fail).
    const broken = structuredClone(doc) as any;
    broken.paths['/rooms'].post.responses = { '200': { content: {} } };
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('holds every route, and nothing else', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const routes = ALL_ROUTES.map((r) => `${r.method} ${toOpenApiPath(r.path)}`);
    expect(documented.sort()).toEqual([...new Set(routes)].sort());
    expect(routes.length).toBe(new Set(routes).size);
    for (const route of ALL_ROUTES) {
      const op = doc.paths[toOpenApiPath(route.path)]![route.method.toLowerCase()];
      expect(op.summary, `${route.method} ${route.path}`).toBe(route.summary);
      expect(op.summary.length).toBeGreaterThan(3);
      const pathParams = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
      expect(op.parameters?.filter((p: any) => p.in === 'path').map((p: any) => p.name) ?? []).toEqual(pathParams);
      if (route.auth === 'actor') expect(op.security).toEqual([{ apiKey: [] }, { clientKey: [], userToken: [] }]);
    }
  });

  it('declares the body of every POST and PUT, from the schema the handler validates with', () => {
    for (const route of ALL_ROUTES.filter((r) => r.method === 'POST' || r.method === 'PUT')) {
      const where = `${route.method} ${route.path}`;
      expect(route.body !== undefined || route.streamBody === true, `${where} must declare body (a schema, or null)`).toBe(true);
      const op = doc.paths[toOpenApiPath(route.path)]![route.method.toLowerCase()];
      if (route.body) expect(op.requestBody.content['application/json'].schema, where).toEqual(requestSchema(route.body));
      else if (route.streamBody) expect(Object.keys(op.requestBody.content)).toEqual(['multipart/form-data']);
      else expect(op.requestBody, where).toBeUndefined();
    }
    // Spot checks that the generated schemas carry the validation rules.
    const createRoom = doc.paths['/rooms']!.post.requestBody;
    expect(createRoom.required).toBe(false);
    expect(createRoom.content['application/json'].schema.properties.roomType).toEqual({ type: 'string', enum: ['direct', 'group'] });
    const settings = doc.paths['/admin/settings']!.put.requestBody.content['application/json'].schema;
    expect(settings.additionalProperties).toBe(false);
    expect(settings.properties.allowedOrigins.items.pattern).toBe('^https?:\\/\\/[^/\\s]+$');
    const setToken = doc.paths['/admin/clients/{id}/token']!.put.requestBody;
    expect(setToken.required).toBe(true);
    expect(setToken.content['application/json'].schema.required).toEqual(['token', 'expirationDate']);
  });
});

describe.each(TRANSPORTS)('the protocol reference served over %s', (transport) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(transport);
  });
  afterAll(() => t.close());

  it('serves /openapi.json (the same document) and /docs', async () => {
    const res = await fetch(`${t.base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(doc);
    const page = await fetch(`${t.base}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain("fetch('/openapi.json')");
  });
});
