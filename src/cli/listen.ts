// `hookline listen`: webhooks to localhost without a tunnel. Connects OUT to a Hookline API,
// opens (or resumes) a listen session whose endpoint's deliveries come down this connection,
// re-POSTs each one to --forward-to with the very same headers and body (so the local app
// verifies the signature as it would in production), and reports the local answer back as the
// attempt's result. Self-contained: it speaks to the API with fetch and nothing else from src/.
//
// Protocol (src/api/routes/listen.ts): POST {T}/listen/sessions ({T}: /v1, or /v1/tenants/<id>
// with --tenant), then GET …/stream (Server-Sent
// Events: ready, delivery, replaced, removed), and one POST …/results per delivery. A dropped
// stream is reopened with the same session; meanwhile the endpoint is paused: its deliveries
// wait (no attempts) and go as soon as this listener is back.
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

export const LISTEN_USAGE = `usage: hookline listen --forward-to URL [--events 'invoice.*,order.paid'] [--api URL] [--tenant ID] [--session ID] [--key KEY]

  --forward-to URL   where each delivery is re-POSTed (e.g. http://localhost:8080/webhooks)
  --events LIST      event types or patterns to receive, comma-separated (default: all)
  --api URL          the Hookline API (default: HOOKLINE_URL, else http://127.0.0.1:3000)
  --tenant ID        listen in this tenant (default: the tenant "default"); a key bound to a
                     tenant needs its own tenant here
  --session ID       resume this session, or open it under this name (default: a new one);
                     each tenant has its own session names
  --key KEY          API key (default: HOOKLINE_API_KEY; prefer the variable: arguments show in ps)`;

/** The local app's answer body kept for the attempt record (the API keeps 2 KiB of it). */
const LOCAL_BODY_MAX_BYTES = 64 * 1024;
/** Time kept back from the attempt's timeout to report the answer before the worker gives up. */
const REPORT_MARGIN_MS = 500;
/** The API pings every 15 s; this long without a byte means the connection is dead. */
const STREAM_IDLE_MS = 45_000;
const RECONNECT_MIN_MS = 500;
const ANSWER_HEADERS = ['retry-after', 'content-type'] as const;
const RECONNECT_MAX_MS = 10_000;

class ListenError extends Error {
  constructor(message: string, readonly status: number | null, readonly fatal: boolean) {
    super(message);
  }
}

interface Delivery {
  requestId: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

type Answer =
  | { status: number; headers: Record<string, string>; bodyBase64: string }
  | { error: { code: string; message: string } };

interface Options {
  api: URL;
  key: string | undefined;
  forwardTo: URL;
  eventTypes: string[] | undefined;
  session: string | undefined;
  tenant: string | undefined;
  /** Where the tenant's routes are: /v1, or /v1/tenants/<id>. */
  prefix: string;
}

function parseOptions(args: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseArgs({
    args,
    options: {
      'forward-to': { type: 'string' }, events: { type: 'string' }, api: { type: 'string' },
      session: { type: 'string' }, key: { type: 'string' }, tenant: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(LISTEN_USAGE);
    process.exit(0);
  }
  const forwardTo = values['forward-to'];
  if (!forwardTo) throw new ListenError(`--forward-to is required\n\n${LISTEN_USAGE}`, null, true);
  const url = (raw: string, flag: string) => {
    try {
      const u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') return u;
    } catch {
      // reported below
    }
    throw new ListenError(`${flag}: not an http(s) URL: ${raw}`, null, true);
  };
  const tenant = values.tenant;
  if (tenant !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(tenant)) {
    throw new ListenError(`--tenant: not a tenant id: ${tenant}`, null, true);
  }
  const events = values.events?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    api: url(values.api ?? env.HOOKLINE_URL ?? `http://${env.HOST ?? '127.0.0.1'}:${env.PORT ?? '3000'}`, '--api'),
    key: values.key ?? (env.HOOKLINE_API_KEY || undefined),
    forwardTo: url(forwardTo, '--forward-to'),
    eventTypes: events && events.length > 0 ? events : undefined,
    session: values.session,
    tenant,
    prefix: tenant === undefined ? '/v1' : `/v1/tenants/${tenant}`,
  };
}

class ListenClient {
  private stopped = false;
  private current: AbortController | null = null;
  session: string | undefined;

  constructor(private readonly o: Options) {
    this.session = o.session;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.o.key ? { authorization: `Bearer ${this.o.key}` } : {}), ...extra };
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.o.api), {
        method,
        headers: this.headers(body !== undefined ? { 'content-type': 'application/json' } : {}),
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new ListenError(`cannot reach the Hookline API at ${this.o.api.origin}: ${causeOf(err)}`, null, false);
    }
    const json: any = await res.json().catch(() => ({}));
    if (!res.ok) throw apiError(res.status, `${method} ${path}`, json);
    return { status: res.status, json };
  }

  /** Opens or resumes the session; prints the secret when it is new (the only time it is shown). */
  async open(): Promise<void> {
    const { json } = await this.call('POST', `${this.o.prefix}/listen/sessions`, { session: this.session, eventTypes: this.o.eventTypes }).catch((err) => {
      // Opening a session, 404 is about the tenant (none such, or not the key's): waiting will not help.
      if (err instanceof ListenError && err.status === 404) throw new ListenError(`${err.message} (check --tenant)`, 404, true);
      throw err;
    });
    this.session = json.session;
    const types = json.eventTypes ? json.eventTypes.join(', ') : 'all event types';
    if (json.resumed) {
      console.log(`resumed session ${json.session} (endpoint ${json.endpointId}, ${types})`);
      if (json.disabledReason) {
        console.error(`warning: endpoint ${json.endpointId} is disabled (${json.disabledReason}); nothing is delivered until it is enabled: PATCH ${this.o.prefix}/endpoints/${json.endpointId} {"disabled":false}`);
      }
    } else {
      console.log(`session ${json.session} (endpoint ${json.endpointId}, ${types})`);
      console.log(`secret: ${json.secret}`);
      console.log('  (shown once: give it to your app to verify signatures, e.g. the standardwebhooks library)');
    }
    console.log(`forwarding to ${this.o.forwardTo.href}; resume later with ${this.o.tenant ? `--tenant ${this.o.tenant} ` : ''}--session ${json.session} (kept ${Math.round(json.graceMs / 60_000)} min after a disconnect)`);
  }

  /** Streams until stopped; a dropped stream is reopened with backoff, a refused one ends the command. */
  async run(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    let reopen = false;
    while (!this.stopped) {
      try {
        if (reopen) await this.open();
        reopen = false;
        await this.stream(() => (delay = RECONNECT_MIN_MS));
        if (this.stopped) return;
        console.error('disconnected from the API; reconnecting');
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ListenError && err.status === 404 && !reopen) {
          // Removed after the grace period (or its endpoint deleted): a new one, with a new secret.
          console.error(`session ${this.session} no longer exists on the API; opening it again`);
          reopen = true;
          continue;
        }
        if (err instanceof ListenError && err.fatal) throw err;
        console.error(`${(err as Error).message}; reconnecting in ${Math.round(delay / 100) / 10} s`);
      }
      await sleep(delay);
      delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    }
  }

  stop(): void {
    this.stopped = true;
    this.current?.abort();
  }

  private async stream(onReady: () => void): Promise<void> {
    const ac = new AbortController();
    this.current = ac;
    let idle = setTimeout(() => ac.abort(), STREAM_IDLE_MS);
    const path = `${this.o.prefix}/listen/sessions/${encodeURIComponent(this.session!)}/stream`;
    try {
      let res: Response;
      try {
        res = await fetch(new URL(path, this.o.api), { headers: this.headers({ accept: 'text/event-stream' }), signal: ac.signal });
      } catch (err) {
        throw new ListenError(`cannot reach the Hookline API at ${this.o.api.origin}: ${causeOf(err)}`, null, false);
      }
      if (!res.ok || !res.body) throw apiError(res.status, `GET ${path}`, await res.json().catch(() => ({})));
      const decoder = new TextDecoder();
      let buffer = '';
      const reader = res.body.getReader();
      // An abort (stop, or the idle watchdog) ends a pending read at once.
      ac.signal.addEventListener('abort', () => void reader.cancel().catch(() => {}));
      while (!ac.signal.aborted) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        clearTimeout(idle);
        idle = setTimeout(() => ac.abort(), STREAM_IDLE_MS);
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.dispatch(block, onReady);
        }
      }
    } catch (err) {
      if (ac.signal.aborted && !this.stopped) throw new ListenError('the stream went quiet', null, false);
      if (!this.stopped) throw err;
    } finally {
      clearTimeout(idle);
    }
  }

  private dispatch(block: string, onReady: () => void): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0) return; // a ping
    const payload = JSON.parse(data.join('\n'));
    if (event === 'ready') {
      onReady();
      console.log(`connected to ${this.o.api.origin}, waiting for deliveries`);
    } else if (event === 'delivery') {
      void this.handle(payload as Delivery);
    } else if (event === 'replaced' || event === 'removed') {
      console.error(event === 'replaced'
        ? `another hookline listen took over session ${this.session}; stopping`
        : `session ${this.session} was removed on the API (its endpoint was deleted); stopping`);
      this.stop();
      process.exitCode = 1;
    }
  }

  private async handle(d: Delivery): Promise<void> {
    const started = performance.now();
    const answer = await forward(this.o.forwardTo, d.headers, d.body, Math.max(1_000, d.timeoutMs - REPORT_MARGIN_MS));
    const ms = Math.round(performance.now() - started);
    console.log(`${new Date().toISOString()}  ${d.headers['webhook-id'] ?? '?'}  ${eventTypeOf(d.body)}  -> ${'status' in answer ? answer.status : `${answer.error.code}: ${answer.error.message}`}  ${ms} ms`);
    try {
      await this.call('POST', `${this.o.prefix}/listen/sessions/${encodeURIComponent(this.session!)}/results`, { requestId: d.requestId, ...answer });
    } catch (err) {
      // The attempt times out on the worker and is retried like any unanswered POST.
      console.error(`could not report ${d.headers['webhook-id'] ?? d.requestId}: ${(err as Error).message}`);
    }
  }
}

/** One POST to the local app with exactly the delivery's headers and body. */
function forward(target: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Answer) => {
      if (!settled) {
        settled = true;
        resolve(a);
      }
    };
    const req = (target.protocol === 'https:' ? https : http).request(
      target,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < LOCAL_BODY_MAX_BYTES) chunks.push(c.subarray(0, LOCAL_BODY_MAX_BYTES - size));
          size += c.length;
        });
        res.on('end', () => {
          // Only what the attempt's judgement reads (Retry-After on 429/503) and what describes the
          // body; a local app's cookies or huge headers have no business in the attempt record.
          const h: Record<string, string> = {};
          for (const name of ANSWER_HEADERS) {
            const v = res.headers[name];
            if (typeof v === 'string') h[name] = v.slice(0, 1024);
          }
          done({ status: res.statusCode ?? 0, headers: h, bodyBase64: Buffer.concat(chunks).toString('base64') });
        });
        res.on('error', (err: NodeJS.ErrnoException) => done({ error: { code: err.code ?? 'ERESPONSE', message: err.message.slice(0, 500) } }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`the local app did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({ error: { code: err.code ?? 'EREQUEST', message: `${target.origin}: ${err.message}`.slice(0, 500) } }));
    req.end(body);
  });
}

function apiError(status: number, what: string, json: any): ListenError {
  const message = `${what}: ${status} ${json?.message ?? ''}`.trim();
  if (status === 401 || status === 403) return new ListenError(`${message} (set HOOKLINE_API_KEY or --key to a key that may manage endpoints)`, status, true);
  // 404 on the stream: the session was swept; 5xx and 429: the API will be back.
  return new ListenError(message, status, status >= 400 && status < 500 && status !== 404 && status !== 408 && status !== 429);
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function eventTypeOf(body: string): string {
  try {
    return String(JSON.parse(body).type ?? '?');
  } catch {
    return '?';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runListen(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const client = new ListenClient(parseOptions(args, env));
  await client.open();
  const stop = () => {
    client.stop();
    console.log(`stopped; session ${client.session} is paused (its deliveries wait and retry); resume with --session ${client.session}`);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await client.run();
}
