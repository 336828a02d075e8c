// What the API accepts below the schemas: the JSON body parser and the check on path and query
// parameters. Postgres refuses `\u0000` in text and jsonb, a lone surrogate would be stored as
// U+FFFD without a word, `1e400` parses to Infinity (stored as null) and 2^53 + 1 is rounded, and
// a 5,000-level `data` overflows the stack of whoever walks it next. All of these are refused
// here with a 400 that names the field, before a route or the database sees them.
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors';

/** Deeper than any real payload (Stripe's objects nest about 8 levels); well inside every stack. */
export const MAX_JSON_DEPTH = 64;
/** Keeps a message that names a field readable when the key itself is huge. */
const MAX_SEGMENT_CHARS = 64;

// A NUL, or a surrogate half without its partner.
const BAD_CHARS = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function badCharsIn(s: string): string | null {
  if (!BAD_CHARS.test(s)) return null;
  return s.includes('\u0000') ? 'must not contain \\u0000' : 'must not contain a lone surrogate (invalid Unicode)';
}

const segment = (key: string) => (key.length > MAX_SEGMENT_CHARS ? `${key.slice(0, MAX_SEGMENT_CHARS)}…` : key);

function invalid(path: string[], message: string): ApiError {
  const where = ['body', ...path.map(segment)].join('.');
  return new ApiError(400, 'validation_error', `${where}: ${message}`, [{ path: where, message }]);
}

/**
 * Walks a parsed body; throws on the first value JSON or Postgres cannot keep. Strings are only
 * scanned when the text held a `\u` escape: raw NULs are invalid JSON and raw bytes were checked
 * as UTF-8, so an escape is the only way in. `path` is built only on the way out of a failure.
 */
function check(v: unknown, depth: number, scanStrings: boolean): { path: string[]; message: string } | null {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return { path: [], message: 'number out of range (JSON cannot keep it)' };
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      return { path: [], message: 'integer beyond 2^53 would be rounded; send it as a string' };
    }
    return null;
  }
  if (typeof v === 'string') {
    const bad = scanStrings ? badCharsIn(v) : null;
    return bad ? { path: [], message: bad } : null;
  }
  if (v === null || typeof v !== 'object') return null;
  if (depth >= MAX_JSON_DEPTH) return { path: [], message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = check(v[i], depth + 1, scanStrings);
      if (r) return (r.path.unshift(String(i)), r);
    }
    return null;
  }
  for (const key in v) {
    const badKey = scanStrings ? badCharsIn(key) : null;
    if (badKey) return { path: [key], message: `key ${badKey}` };
    const r = check((v as Record<string, unknown>)[key], depth + 1, scanStrings);
    if (r) return (r.path.unshift(key), r);
  }
  return null;
}

/** Throws ApiError(400) naming the first field of `value` JSON or Postgres cannot keep. */
export function assertStorableJson(value: unknown, scanStrings = true): void {
  const r = check(value, 0, scanStrings);
  if (r) {
    // A bad key names itself as the last segment; its text may be the problem, so cut it.
    throw invalid(r.path.map((p) => (badCharsIn(p) ? JSON.stringify(p).slice(1, -1) : p)), r.message);
  }
}

function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw: Buffer, done) => {
    // The README says some POST bodies are optional; `content-type: application/json` with no
    // body means "no options", the same as sending {}.
    if (raw.length === 0) return done(null, {});
    if (!isUtf8(raw)) return done(new ApiError(400, 'invalid_json', 'body: is not valid UTF-8'), undefined);
    const text = raw.toString('utf8');
    parse(req, text, (err, body) => {
      if (err) return done(err, undefined);
      try {
        assertStorableJson(body, text.includes('\\u'));
      } catch (e) {
        return done(e as Error, undefined);
      }
      done(null, body);
    });
  });
}

function checkStrings(where: 'params' | 'querystring', values: unknown): void {
  if (!values || typeof values !== 'object') return;
  for (const [key, value] of Object.entries(values)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      const bad = typeof v === 'string' ? badCharsIn(v) : null;
      if (bad) throw new ApiError(400, 'validation_error', `${where}.${segment(key)}: ${bad}`, [{ path: `${where}.${segment(key)}`, message: bad }]);
    }
  }
}

/** The body parser, and a hook that refuses NULs and lone surrogates in path and query values. */
export function registerInputChecks(app: FastifyInstance): void {
  registerJsonParser(app);
  // A callback hook, not an async one: it runs on every request and never waits, so it need not
  // cost a promise and a microtask each time.
  app.addHook('preValidation', (req: FastifyRequest, _reply, done) => {
    try {
      checkStrings('params', req.params);
      checkStrings('querystring', req.query);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
}
