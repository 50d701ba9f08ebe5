import { ConfigError, loadConfig } from './config.js';
import { provisionDemo } from './core/demo.js';
import { createLogger } from './observability/logger.js';
import { startServer } from './server.js';

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

  // The demo tenant belongs to the embedded store: on a shared Redis every node start would add one.
  if (config.demo && config.redisUrl) log.info('cluster mode: no demo application; create applications with roomcast-admin');
  if (config.demo && !config.redisUrl) {
    const demo = await provisionDemo(server.core);
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
    // Deliberately printed to stdout, not logged: the operator asked for a ready demo.
    console.log(
      [
        '',
        `roomcast is running at ${base} (transport: ${server.transport}, embedded store)`,
        '',
        'Demo application',
        `  app id      ${demo.appId}`,
        `  API key     ${demo.apiKey}`,
        `  client key  ${demo.clientKey}`,
        `  user        ${demo.userId}`,
        `  user token  ${demo.token}`,
        '',
        'Try it:',
        `  curl -s ${base}/rooms/${demo.roomId}/messages/v3 -H 'IM-CLIENT-KEY: ${demo.clientKey}' -H 'IM-Authorization: ${demo.token}'`,
        '',
      ].join('\n'),
    );
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

main().catch((err) => {
  console.error('roomcast: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
