import { createRequire } from 'node:module';
import path from 'node:path';

export type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const require = createRequire(import.meta.url);
let cached: Uws | undefined;

/**
 * Loads the native uWebSockets.js addon directly. The package's own entry point silently
 * falls back to a slow pure-JS implementation when the binary does not fit this Node.js
 * build; we never want that, so we require the binary ourselves and fail loudly instead.
 */
export function loadUws(): Uws {
  if (cached) return cached;
  const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  const binary = path.join(
    pkgDir,
    'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
  );
  try {
    cached = require(binary) as Uws;
  } catch (err) {
    throw new Error(
      `native uWebSockets.js is not available for ${process.platform}/${process.arch}, ABI ${process.versions.modules}: ${(err as Error).message}`,
    );
  }
  if (typeof cached.App !== 'function' || typeof cached.us_socket_local_port !== 'function') {
    cached = undefined;
    throw new Error('loaded uWebSockets.js module is not the native build');
  }
  return cached;
}

/** True when the native build loads; used to pick a transport automatically. */
export function uwsAvailable(): boolean {
  try {
    loadUws();
    return true;
  } catch {
    return false;
  }
}
