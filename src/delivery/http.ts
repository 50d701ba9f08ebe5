import http from 'node:http';
import https from 'node:https';

export interface PostResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** Replies longer than this are cut: an answer we read is small JSON. */
const MAX_REPLY_BYTES = 256 * 1024;

/**
 * One POST with a deadline over node:http/https (a custom CA for providers behind a private
 * proxy or in tests). Rejects on network errors and on the timeout; any status resolves.
 */
export function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number, ca?: string): Promise<PostResult> {
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      { method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers }, ca, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_REPLY_BYTES) chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(deadline);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    // `timeout` above is idle time; this bounds the whole exchange.
    const deadline = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error) {
      clearTimeout(deadline);
      reject(err);
    }
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end(body);
  });
}

/** Only http(s) URLs are called. */
export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
