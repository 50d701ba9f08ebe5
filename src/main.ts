#!/usr/bin/env node
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.js';
import { type DemoCredentials, provisionDemo } from './core/demo.js';
import { createLogger, type Logger } from './observability/logger.js';
import { ListenError, type RoomcastServer, startServer } from './server.js';

/**
 * The `roomcast` command: `serve` (the default) runs the server; the other subcommands act on
 * the settings or the data and exit. Add a subcommand by adding an entry to COMMANDS.
 */
interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: 'run the server (the default)', run: () => serve() },
  'check-config': { summary: 'validate the settings (environment and ROOMCAST_CONFIG file) and exit', run: () => checkConfig() },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    `roomcast ${version()}: a multi-tenant IMKIT-compatible chat server`,
    '',
    'usage: roomcast [command] [--help] [--version]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Settings come from ROOMCAST_* environment variables and the JSON file named by',
    'ROOMCAST_CONFIG (README.md, "Settings"). The operator CLI is roomcast-admin.',
  ].join('\n');
}

function readConfig(): Config | undefined {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`roomcast: invalid configuration: ${err.message}`);
      return undefined;
    }
    throw err;
  }
}

async function checkConfig(): Promise<number> {
  const config = readConfig();
  if (!config) return 2;
  const data = config.databaseUrl ? 'PostgreSQL' : `SQLite ${config.databasePath}`;
  const mode = config.redisUrl ? `cluster (${data}, Redis bus)` : `embedded (${data})`;
  console.log(`roomcast: configuration is valid (${mode}, ${config.tlsCertFile ? 'https' : 'http'}://${config.host}:${config.port}, transport ${config.transport})`);
  return 0;
}

async function serve(): Promise<number> {
  const config = readConfig();
  if (!config) return 2;
  const log = createLogger(config.logLevel);
  let server: RoomcastServer;
  try {
    server = await startServer(config, log);
  } catch (err) {
    if (err instanceof ListenError) {
      log.fatal(err.message);
      console.error(`roomcast: ${err.message}`);
      return 1;
    }
    throw err;
  }
  await printDemo(config, server, log);
  handleSignals(config, server, log);
  return new Promise<number>(() => undefined); // runs until a signal ends the process
}

/** The embedded demo tenant, printed for the operator who asked for a ready demo. */
async function printDemo(config: Config, server: RoomcastServer, log: Logger): Promise<void> {
  // The demo tenant belongs to the embedded database: on a shared cluster database every node start would add one.
  if (config.demo && config.redisUrl) log.info('cluster mode: no demo application; create applications with roomcast-admin');
  if (!config.demo || config.redisUrl) {
    log.info({ data: server.dataLocation }, 'data location');
    return;
  }
  const demo = await demoCredentials(server, config);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const base = `${server.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
  // Deliberately printed to stdout, not logged: the operator asked for a ready demo.
  console.log(
    [
      '',
      `roomcast is running at ${base} (transport: ${server.transport})`,
      `data: ${server.dataLocation}`,
      '',
      ...(demo
        ? [
            `Demo application${demo.created ? '' : ' (created on the first start, kept in the data)'}`,
            `  app id      ${demo.appId}`,
            `  API key     ${demo.apiKey}`,
            `  client key  ${demo.clientKey}`,
            `  user        ${demo.userId}`,
            `  user token  ${demo.token}`,
            '',
            'Try it:',
            `  curl -s ${server.tls ? '-k ' : ''}${base}/rooms/${demo.roomId}/messages/v3 -H 'IM-CLIENT-KEY: ${demo.clientKey}' -H 'IM-Authorization: ${demo.token}'`,
          ]
        : ['No demo application: this data already holds applications (roomcast-admin apps list).']),
      '',
    ].join('\n'),
  );
}

/**
 * The demo application is created on the first start only (an empty database); its
 * credentials are kept beside the database file (mode 0600, like the file itself would
 * need) and printed again on later starts while the application exists.
 */
async function demoCredentials(server: RoomcastServer, config: Config): Promise<(DemoCredentials & { created: boolean }) | undefined> {
  const inMemory = config.databasePath === ':memory:';
  const file = path.join(path.dirname(path.resolve(config.databasePath)), 'demo-credentials.json');
  if (!inMemory && existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials;
    if ((await server.core.apps.listApps()).some((app) => app.id === saved.appId)) return { ...saved, created: false };
  }
  if ((await server.core.apps.listApps()).length > 0) return undefined;
  const demo = await provisionDemo(server.core);
  if (!inMemory) {
    writeFileSync(file, JSON.stringify(demo, null, 2), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return { ...demo, created: true };
}

/**
 * SIGTERM/SIGINT drain the server (README: Operating) within shutdownTimeoutMs; a second one
 * exits at once. SIGHUP re-reads the TLS certificate and key.
 */
function handleSignals(config: Config, server: RoomcastServer, log: Logger): void {
  let firstSignalAt = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (firstSignalAt) {
      // `npm start` forwards the terminal's Ctrl-C, which also reaches us directly: the same
      // keypress arrives twice within milliseconds and is not a second request.
      if (Date.now() - firstSignalAt < 250) return;
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    firstSignalAt = Date.now();
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
    setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs, sockets: server.gateway.connectionCount(), requests: server.lifecycle.requestsInFlight }, 'shutdown timeout: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    server.drain().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    if (!server.tls) return log.info('SIGHUP: no TLS configured, nothing to reload');
    try {
      if (server.reloadTls()) log.info('SIGHUP: TLS certificate and key reloaded; open connections keep theirs');
      else log.warn(`SIGHUP: the ${server.transport} transport cannot reload TLS in place; restart the node (a drained restart keeps clients)`);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'SIGHUP: TLS reload failed; the previous certificate stays in use');
    }
  });
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  if (values.help) {
    console.log(usage());
    return 0;
  }
  const name = positionals[0] ?? 'serve';
  const command = COMMANDS[name];
  if (!command) {
    console.error(`roomcast: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return command.run(positionals.slice(1));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('roomcast: failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
