import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const require = createRequire(import.meta.url);
let cached: Uws | undefined;

const packageDir = () => path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));

/** glibc or musl: the package's Linux binaries are linked against glibc. */
function cLibrary(): 'glibc' | 'musl' | 'other' {
  if (process.platform !== 'linux') return 'other';
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Node ABI versions the installed package has a binary for, on this platform and architecture. */
export function uwsAbis(): number[] {
  const prefix = `uws_${process.platform}_${process.arch}_`;
  try {
    return readdirSync(path.join(packageDir(), 'binaries'))
      .filter((f) => f.startsWith(prefix) && f.endsWith('.node'))
      .map((f) => Number(f.slice(prefix.length, -'.node'.length)))
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/**
 * Loads the native uWebSockets.js addon directly. The package's own entry point silently
 * falls back to a slow pure-JS implementation when the binary does not fit this Node.js
 * build; we never want that, so we check for a binary for this platform, architecture, Node
 * ABI and C library, require it ourselves, and fail with the reason instead.
 */
export function loadUws(): Uws {
  if (cached) return cached;
  const abi = Number(process.versions.modules);
  const where = `Node ${process.version} (ABI ${abi}) on ${process.platform}/${process.arch}`;
  if (cLibrary() === 'musl') {
    throw new Error(`native uWebSockets.js is not available for ${where} with musl libc: its Linux binaries need glibc`);
  }
  const abis = uwsAbis();
  if (!abis.includes(abi)) {
    throw new Error(
      `native uWebSockets.js is not available for ${where}: the installed build has binaries for ABI ${abis.join(', ') || 'none'} only`,
    );
  }
  const binary = path.join(packageDir(), 'binaries', `uws_${process.platform}_${process.arch}_${abi}.node`);
  try {
    cached = require(binary) as Uws;
  } catch (err) {
    throw new Error(`native uWebSockets.js did not load for ${where}: ${(err as Error).message}`);
  }
  if (typeof cached.App !== 'function' || typeof cached.us_socket_local_port !== 'function') {
    cached = undefined;
    throw new Error('loaded uWebSockets.js module is not the native build');
  }
  return cached;
}

/** Why the native build cannot be used here, or undefined when it loads. */
export function uwsUnavailableReason(): string | undefined {
  try {
    loadUws();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** True when the native build loads; used to pick a transport automatically. */
export function uwsAvailable(): boolean {
  return uwsUnavailableReason() === undefined;
}
