import type { Readable } from 'node:stream';

/** The small request/response interface routes are written against; uWS and node:http adapt to it. */
export interface HttpRequest {
  /** Upper case, as node spells it. */
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The whole body, for routes that take it buffered (empty when `stream` is set). */
  body: Buffer;
  /** The body as a stream, for routes that declared `streamBody` (uploads). */
  stream?: Readable;
  remoteAddress: string;
  /** Registers a listener for the client going away before the response was written (long-polling). */
  onAborted?(listener: () => void): void;
}

/** A body sent from a stream of known length (downloads). */
export interface StreamBody {
  stream: Readable;
  length: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer | StreamBody;
}

/** What the transport adapters serve. */
export interface HttpService {
  handle(req: HttpRequest): Promise<HttpResponse>;
  /** Whether this route takes its body as a stream; asked before any of the body is read. */
  streamsBody(method: string, path: string): boolean;
  /** The headers (CORS) an answer the adapter writes itself (e.g. 413 before routing) must carry. */
  refusalHeaders?(req: HttpRequest): Record<string, string>;
}

export const isStreamBody = (body: HttpResponse['body']): body is StreamBody =>
  typeof body === 'object' && !Buffer.isBuffer(body);
