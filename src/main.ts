import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Config, ConfigError, loadConfig } from './config.js';
import { type DemoCredentials, provisionDemo } from './core/demo.js';
import { createLogger } from './observability/logger.js';
import { type RoomcastServer, startServer } from './server.js';

/** Command line entry: read config, start, print the demo banner, stop on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`roomcast: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const server = await startServer(config, log);

  // The demo tenant belongs to the embedded database: on a shared cluster database every node start would add one.
  if (config.demo && config.redisUrl) log.info('cluster mode: no demo application; create applications with roomcast-admin');
  if (config.demo && !config.redisUrl) {
    const demo = await demoCredentials(server, config);
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
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
              `  curl -s ${base}/rooms/${demo.roomId}/messages/v3 -H 'IM-CLIENT-KEY: ${demo.clientKey}' -H 'IM-Authorization: ${demo.token}'`,
            ]
          : ['No demo application: this data already holds applications (roomcast-admin apps list).']),
        '',
      ].join('\n'),
    );
  } else {
    log.info({ data: server.dataLocation }, 'data location');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
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

main().catch((err) => {
  console.error('roomcast: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
