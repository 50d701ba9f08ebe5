import { type ImError } from '../core/errors.js';
import type { HttpResponse } from './types.js';

const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

/** IMKIT's success envelope. */
export function ok(result: unknown): HttpResponse {
  return { status: 200, headers: { ...JSON_TYPE }, body: JSON.stringify({ RC: 0, RM: 'OK', result }) };
}

/** IMKIT's error envelope, HTTP status = RC. */
export function fail(err: ImError): HttpResponse {
  const retryAfter = err.details?.retryAfter;
  const headers: Record<string, string> = { ...JSON_TYPE, ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}) };
  return { status: err.status, headers, body: JSON.stringify(err.toEnvelope()) };
}

/** The response with `extra` headers added (CORS on answers written outside the service). */
export function withHeaders(res: HttpResponse, extra: Record<string, string> | undefined): HttpResponse {
  return extra ? { ...res, headers: { ...res.headers, ...extra } } : res;
}

export function json(status: number, value: unknown): HttpResponse {
  return { status, headers: { ...JSON_TYPE }, body: JSON.stringify(value) };
}
