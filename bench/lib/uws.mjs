// Loads the native uWebSockets.js binary directly, as src/http/uws-native.ts does: the package's
// own entry point silently falls back to a slow pure-JS build, which would make a false ceiling.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export function loadUws() {
  const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  const binary = path.join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  const uws = require(binary);
  if (typeof uws.App !== 'function' || typeof uws.us_socket_local_port !== 'function') {
    throw new Error(`${binary} is not the native uWebSockets.js build`);
  }
  return uws;
}
