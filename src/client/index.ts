// hookline/client: a typed client for Hookline's HTTP API. The types (schema.ts) are generated
// from the API's own OpenAPI document (scripts/generate-client.ts); openapi-fetch turns them into
// calls checked at compile time: paths, path/query parameters, bodies and responses. The `hookline`
// CLI and the consumer portal (in the browser) use it, so a route change that breaks them fails
// `tsc` instead of a user.
//
//   const hookline = createHooklineClient({ baseUrl: 'http://127.0.0.1:3000', token: process.env.HOOKLINE_API_KEY });
//   const ep = await ok(hookline.POST('/v1/endpoints', { body: { url: 'https://example.com/hooks' } }));
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, paths };

/** A refusal from the API: its status and its error body `{code, message, details?}`. */
export class HooklineApiError extends Error {
  override readonly name = 'HooklineApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    /** The API's own message (e.g. "url: … is not allowed"), for showing to a user. */
    readonly apiMessage: string,
    readonly details: unknown,
    where: string,
  ) {
    super(`${where}: ${status} ${apiMessage}`);
  }
}

export type HooklineClient = Client<paths>;

export interface HooklineClientOptions {
  /** Where the API is, e.g. http://127.0.0.1:3000 (a page on the API's origin: location.origin). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`: the admin key, a scoped key or a portal session. */
  token?: string;
  /** A fetch of your own (tests, proxies); default the global one. */
  fetch?: (input: Request) => Promise<Response>;
}

// Hookline answers every refusal with one error shape (src/api/errors.ts), and the document
// declares success responses only, so errors are thrown here, once, instead of checked per call.
const throwOnError: Middleware = {
  async onResponse({ request, response }) {
    if (response.ok) return undefined;
    const body = (await response.clone().json().catch(() => ({}))) as { code?: string; message?: string; details?: unknown };
    const where = `${request.method} ${new URL(request.url).pathname}`;
    throw new HooklineApiError(response.status, body.code ?? 'http_error', body.message ?? response.statusText, body.details, where);
  },
};

export function createHooklineClient(opts: HooklineClientOptions): HooklineClient {
  const client = createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  client.use(throwOnError);
  return client;
}

/** The body of a successful call (refusals have already thrown HooklineApiError, see above). */
export async function ok<T>(call: Promise<{ data?: T }>): Promise<T> {
  return (await call).data as T;
}
