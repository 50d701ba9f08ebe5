// Server-side measurements read from /proc: CPU time (all threads) and resident memory.
import { readFileSync } from 'node:fs';

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux x86_64

/** utime+stime of a process (all its threads), in microseconds. */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) * TICK_US;
}

/** VmRSS in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** A CPU + wall-clock snapshot; `since(prev)` gives CPU used and utilisation of one core. */
export function snapshot(pid) {
  return { cpu: cpuMicros(pid), wall: performance.now() * 1000 };
}
export function since(prev, pid) {
  const now = snapshot(pid);
  const cpuUs = now.cpu - prev.cpu;
  const wallUs = now.wall - prev.wall;
  return { cpuUs, wallUs, util: cpuUs / wallUs };
}
