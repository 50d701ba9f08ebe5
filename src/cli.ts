#!/usr/bin/env node
import { parseArgs } from 'node:util';

/**
 * roomcast-admin: the operator CLI, a thin client of the running server's REST API.
 * Server: --url, else ROOMCAST_URL, else ROOMCAST_PORT on 127.0.0.1 (https when
 * ROOMCAST_TLS_CERT_FILE is set), else http://127.0.0.1:3100.
 * Secrets come from the environment only (never flags, so they stay out of shell history
 * and `ps`): ROOMCAST_OPERATOR_SECRET for `apps`, ROOMCAST_API_KEY for everything else.
 * Add a command by adding an entry to COMMANDS.
 */
type Auth = 'operator' | 'apiKey';
type Values = ReturnType<typeof parse>['values'];

interface Ctx {
  args: string[];
  values: Values;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
}

interface Command {
  usage: string;
  auth: Auth;
  run(ctx: Ctx): Promise<unknown>;
}

const OPTIONS = {
  url: { type: 'string' },
  name: { type: 'string' },
  domain: { type: 'string', multiple: true },
  nickname: { type: 'string' },
  avatar: { type: 'string' },
  skip: { type: 'string' },
  limit: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  granularity: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

const arg = (ctx: Ctx, i: number, what: string): string => {
  const value = ctx.args[i];
  if (!value) throw new UsageError(`missing ${what}`);
  return encodeURIComponent(value);
};

const COMMANDS: Record<string, Command> = {
  'apps create': {
    usage: 'apps create --name NAME [--domain HOST]...',
    auth: 'operator',
    run: (c) => {
      if (!c.values.name) throw new UsageError('apps create needs --name');
      return c.call('POST', '/operator/apps', { name: c.values.name, domains: c.values.domain });
    },
  },
  'apps list': { usage: 'apps list', auth: 'operator', run: (c) => c.call('GET', '/operator/apps') },
  'apps delete': { usage: 'apps delete APP_ID', auth: 'operator', run: (c) => c.call('DELETE', `/operator/apps/${arg(c, 0, 'APP_ID')}`) },

  'client-key show': { usage: 'client-key show', auth: 'apiKey', run: (c) => c.call('GET', '/admin/client-key') },
  'client-key revoke': { usage: 'client-key revoke', auth: 'apiKey', run: (c) => c.call('DELETE', '/admin/client-key') },
  'client-key generate': { usage: 'client-key generate', auth: 'apiKey', run: (c) => c.call('POST', '/admin/client-key', {}) },

  'users list': {
    usage: 'users list [--skip N] [--limit N]',
    auth: 'apiKey',
    run: (c) => c.call('GET', `/admin/clients?${new URLSearchParams({ skip: c.values.skip ?? '0', limit: c.values.limit ?? '50' })}`),
  },
  'users get': { usage: 'users get USER_ID', auth: 'apiKey', run: (c) => c.call('GET', `/admin/clients/${arg(c, 0, 'USER_ID')}`) },
  'users upsert': {
    usage: 'users upsert USER_ID [--nickname NAME] [--avatar URL]',
    auth: 'apiKey',
    // The body IMKIT's API documents for POST /admin/clients (_id, nickname, avatarUrl).
    run: (c) =>
      c.call('POST', '/admin/clients', { _id: c.args[0] ?? missing('USER_ID'), nickname: c.values.nickname, avatarUrl: c.values.avatar }),
  },
  'users delete': { usage: 'users delete USER_ID', auth: 'apiKey', run: (c) => c.call('DELETE', `/admin/clients/${arg(c, 0, 'USER_ID')}`) },

  'tokens issue': {
    usage: 'tokens issue USER_ID      (creates the user if needed; prints the new token)',
    auth: 'apiKey',
    run: (c) => c.call('POST', '/admin/clients', { _id: c.args[0] ?? missing('USER_ID'), issueAccessToken: true }),
  },
  'tokens revoke': {
    usage: 'tokens revoke USER_ID     (every token of the user; their sockets are cut)',
    auth: 'apiKey',
    run: (c) => c.call('DELETE', `/admin/clients/${arg(c, 0, 'USER_ID')}/token`, {}),
  },

  usage: {
    usage: 'usage [--from TIME] [--to TIME] [--granularity minute|hour|day]   (TIME: ISO date or epoch ms)',
    auth: 'apiKey',
    run: (c) => {
      const query = new URLSearchParams();
      for (const key of ['from', 'to', 'granularity'] as const) if (c.values[key]) query.set(key, c.values[key]);
      return c.call('GET', `/admin/usage?${query}`);
    },
  },
  stats: { usage: 'stats                    (IMKIT last-hour report)', auth: 'apiKey', run: (c) => c.call('GET', '/admin/stats') },
};

function missing(what: string): never {
  throw new UsageError(`missing ${what}`);
}

function usage(): string {
  return [
    'usage: roomcast-admin <command> [--url URL]',
    '',
    ...Object.values(COMMANDS).map((c) => `  ${c.usage}`),
    '',
    'server: --url, ROOMCAST_URL, or ROOMCAST_PORT (on 127.0.0.1); default http://127.0.0.1:3100',
    'secrets from the environment: ROOMCAST_OPERATOR_SECRET (apps), ROOMCAST_API_KEY (the rest)',
  ].join('\n');
}

function parse(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
}

/** Where the server is: the flag, then ROOMCAST_URL, then ROOMCAST_PORT on this machine. */
function serverUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return flag.replace(/\/$/, '');
  if (env.ROOMCAST_URL) return env.ROOMCAST_URL.replace(/\/$/, '');
  const scheme = env.ROOMCAST_TLS_CERT_FILE ? 'https' : 'http';
  return `${scheme}://127.0.0.1:${env.ROOMCAST_PORT || '3100'}`;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    console.error(`roomcast-admin: ${(err as Error).message}\n\n${usage()}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const twoWords = COMMANDS[`${positionals[0]} ${positionals[1]}`];
  const command = twoWords ?? COMMANDS[positionals[0] ?? ''];
  if (values.help || !command) {
    (values.help ? console.log : console.error)(usage());
    return values.help ? 0 : 2;
  }
  const secretName = command.auth === 'operator' ? 'ROOMCAST_OPERATOR_SECRET' : 'ROOMCAST_API_KEY';
  const secret = process.env[secretName];
  if (!secret) {
    console.error(`roomcast-admin: set ${secretName} (${command.auth === 'operator' ? "the server's operator secret" : "the application's API key"})`);
    return 2;
  }
  const base = serverUrl(values.url, process.env);
  const auth: Record<string, string> = command.auth === 'operator' ? { authorization: `Bearer ${secret}` } : { 'im-api-key': secret };
  const call = async (method: string, path: string, body?: unknown) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `cannot connect to ${base} (${cause?.code ?? cause?.message ?? (err as Error).message}): is roomcast running there? Set --url, ROOMCAST_URL or ROOMCAST_PORT`,
      );
    }
    const text = await res.text();
    let payload: { result?: unknown; error?: { code: string; message: string } } | undefined;
    try {
      payload = JSON.parse(text) as typeof payload;
    } catch {
      throw new Error(`${base}${path} answered ${res.status} with something that is not roomcast's JSON`);
    }
    if (!res.ok) throw new Error(`${res.status} ${payload?.error?.code}: ${payload?.error?.message}`);
    return payload?.result;
  };
  try {
    const result = await command.run({ args: positionals.slice(twoWords ? 2 : 1), values, call });
    console.log(JSON.stringify(result ?? null, null, 2));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`roomcast-admin: ${err.message}\n  usage: roomcast-admin ${command.usage}`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`roomcast-admin: ${err.message}`);
    process.exit(1);
  },
);
