import { readFile } from 'node:fs/promises';
import { openApiDocument } from '../openapi.js';
import type { RouteDef } from '../route.js';

const VERSION: Promise<string> = readFile(new URL('../../../package.json', import.meta.url), 'utf8').then(
  (text) => (JSON.parse(text) as { version: string }).version,
);
let docsPage: Promise<string> | undefined;

/** The protocol reference: the OpenAPI document of `routes()` and a page rendering it. */
export function referenceRoutes(routes: () => readonly RouteDef[]): RouteDef[] {
  let document: Promise<string> | undefined;
  return [
    {
      method: 'GET', path: '/openapi.json', summary: 'This document (OpenAPI 3.1)', auth: 'public', raw: true,
      handle: async () => ({
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' },
        body: await (document ??= VERSION.then((version) => JSON.stringify(openApiDocument(routes(), version)))),
      }),
    },
    {
      method: 'GET', path: '/docs', summary: 'The protocol reference, rendered', auth: 'public', raw: true,
      handle: async () => ({
        status: 200,
        headers: {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
          'cache-control': 'no-cache',
        },
        body: await (docsPage ??= readFile(new URL('../../../static/docs.html', import.meta.url), 'utf8')),
      }),
    },
  ];
}
