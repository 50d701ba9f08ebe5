#!/usr/bin/env node
import { parseArgs } from 'node:util';

/**
 * Operator CLI: manages applications through the running server's /operator/apps endpoints.
 *   roomcast-admin apps create --name NAME [--domain HOST ...]
 *   roomcast-admin apps list
 *   roomcast-admin apps delete ID
 * Server URL from --url or ROOMCAST_URL (default http://127.0.0.1:3100); the operator secret
 * from ROOMCAST_OPERATOR_SECRET (never a flag, so it stays out of shell history and `ps`).
 */
const USAGE = `usage: roomcast-admin apps <create --name NAME [--domain HOST]... | list | delete ID> [--url URL]`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      domain: { type: 'string', multiple: true },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [group, command, id] = positionals;
  if (values.help || group !== 'apps' || !command) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const secret = process.env.ROOMCAST_OPERATOR_SECRET;
  if (!secret) {
    console.error('roomcast-admin: set ROOMCAST_OPERATOR_SECRET to the server\'s operator secret');
    return 2;
  }
  const base = (values.url ?? process.env.ROOMCAST_URL ?? 'http://127.0.0.1:3100').replace(/\/$/, '');
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const payload = (await res.json()) as { result?: unknown; error?: { code: string; message: string } };
    if (!res.ok) throw new Error(`${res.status} ${payload.error?.code}: ${payload.error?.message}`);
    return payload.result;
  };

  switch (command) {
    case 'create':
      if (!values.name) throw new Error('apps create needs --name');
      console.log(JSON.stringify(await call('POST', '/operator/apps', { name: values.name, domains: values.domain }), null, 2));
      return 0;
    case 'list':
      console.log(JSON.stringify(await call('GET', '/operator/apps'), null, 2));
      return 0;
    case 'delete':
      if (!id) throw new Error('apps delete needs an application id');
      await call('DELETE', `/operator/apps/${encodeURIComponent(id)}`);
      console.log(`deleted ${id}`);
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`roomcast-admin: ${err.message}`);
    process.exit(1);
  },
);
