/** The small request/response interface routes are written against; uWS and node:http adapt to it. */
export interface HttpRequest {
  /** Upper case, as node spells it. */
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

export type HttpHandler = (req: HttpRequest) => Promise<HttpResponse>;
