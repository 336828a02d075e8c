// Payload filters: which events an endpoint receives, decided by the content of the envelope
// ({id, type, timestamp, data}). Owns the filter syntax, its validation (parseFilter, one error
// class naming the offending JSON path) and its evaluation (matches). Pure: no I/O, no Node
// built-ins, no regex, so the API (validation at write), the relay (planning deliveries), the
// portal and `hookline listen --filter` can all share it.
//
// Syntax — the JSON an endpoint stores as `filter`:
//
//   {"type": "invoice.paid",
//    "data.amount": {"$gte": 1000},
//    "data.currency": {"$in": ["EUR", "USD"]},
//    "$or": [{"data.customer.tier": "gold"}, {"data.items.0.sku": {"$startsWith": "PRO-"}}]}
//
// - A filter is a non-empty JSON object. Each key is a dotted path into the envelope or one of
//   $and, $or, $not. Several keys in one object must all hold (AND).
// - Paths start at `id`, `type`, `timestamp` or `data`; only `data` has fields below it. A
//   segment that is a decimal index (`0`, `12`, not `01`) selects an array element; any segment
//   names an object key. A key that contains a dot cannot be named. `__proto__`, `constructor`
//   and `prototype` are refused as segments.
// - A path's value is either a scalar (string, number, boolean, null), meaning $eq, or an
//   operator object with one or more of these (all must hold):
//     $eq, $neq                scalar             equal / not equal
//     $gt, $gte, $lt, $lte     number or string   ordered comparison with a value of the same type
//     $in, $nin                array of scalars   one of / none of
//     $exists                  true or false      the path is present (a null value is present)
//     $startsWith              string             a string value that begins with this prefix
// - $and: [filter, …] all hold; $or: [filter, …] at least one holds; $not: filter does not hold.
//   $not takes a whole filter, never an operator object: {"$not": {"data.amount": {"$gte": 5}}}.
// - Type-strict: "1" never equals 1 and null equals only null. $gt and friends compare two
//   numbers, or two strings by UTF-16 code unit (so ISO timestamps written in one format order
//   chronologically); any other pairing is false. No operator looks inside an array or object
//   value: name an element by its index (`data.items.0.sku`).
// - A missing path fails every operator except `$exists: false`, $neq and $nin: those are the
//   exact negations of $exists: true, $eq and $in, so {"$not": f} always means "not f".
// - Bounds: FILTER_MAX_BYTES of JSON, FILTER_MAX_DEPTH levels of filters, FILTER_MAX_OPERATORS
//   operators, FILTER_MAX_LIST_ITEMS values per $in/$nin, FILTER_MAX_PATH_SEGMENTS segments and
//   FILTER_MAX_PATH_CHARS characters per path.
//
// matches() costs O(operators × path segments): each operator node is visited at most once,
// each path lookup is one own-property read per segment, $in/$nin are Set lookups.

/** An endpoint stores its filter with its row and the relay evaluates it per event: small on purpose. */
export const FILTER_MAX_BYTES = 8 * 1024;
/** Bounds the recursion of parseFilter and matches (each level is a stack frame or two), and readability. */
export const FILTER_MAX_DEPTH = 8;
/** Bounds evaluation time per (event, endpoint) in the relay: each operator is at most one path lookup. */
export const FILTER_MAX_OPERATORS = 64;
/** A longer allow-list is a routing table, better kept as event types, channels or separate endpoints. */
export const FILTER_MAX_LIST_ITEMS = 128;
/** Each segment is one property read per evaluation; real payloads are rarely nested this deep. */
export const FILTER_MAX_PATH_SEGMENTS = 16;
/** Paths are echoed in errors, logs and the portal; a longer one is not a field name anyone writes. */
export const FILTER_MAX_PATH_CHARS = 256;
/** The envelope's top-level fields, as delivered on the wire: where every path starts. */
export const ENVELOPE_FIELDS: readonly string[] = ['id', 'type', 'timestamp', 'data'];
/** Keys that reach an object's prototype in JavaScript: never a path, whatever the lookup does. */
const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const FIELD_OPERATORS = ['$eq', '$neq', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$startsWith'] as const;
const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;
/** Every operator of the syntax, for docs and the portal's editor. */
export const FILTER_OPERATORS: readonly string[] = [...FIELD_OPERATORS, ...LOGICAL_OPERATORS];

/** The name error paths start from: the endpoint field the filter arrives in. */
const ROOT = 'filter';

export type Scalar = string | number | boolean | null;

/** One path segment, with its array index worked out once at parse time (-1: not an index). */
export interface Segment {
  key: string;
  index: number;
}

export type Comparison =
  | { op: '$eq' | '$neq'; value: Scalar }
  | { op: '$gt' | '$gte' | '$lt' | '$lte'; value: number | string }
  | { op: '$in' | '$nin'; values: ReadonlySet<Scalar> }
  | { op: '$exists'; value: boolean }
  | { op: '$startsWith'; value: string };

/** A compiled filter. Cheap to rebuild from the stored JSON, so it is never stored itself. */
export type Filter =
  | { kind: 'and'; filters: readonly Filter[] }
  | { kind: 'or'; filters: readonly Filter[] }
  | { kind: 'not'; filter: Filter }
  | { kind: 'field'; path: string; segments: readonly Segment[]; test: Comparison };

/** The one error of this module: `path` is where in the filter (`filter.$or[1].data.amount.$gte`). */
export class FilterError extends Error {
  override readonly name = 'FilterError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** Operator budget shared by one parse: counts every comparison and every $and/$or/$not. */
interface Budget {
  operators: number;
}

/**
 * Validates `input` (parsed JSON) and compiles it. Throws FilterError naming the offending part.
 *
 * Hand-written rather than zod: keys are free-form dotted paths, so a zod record-of-unions
 * reports "invalid input" at the union instead of naming the unknown operator; z.lazy recursion
 * would walk a hostile document before any depth check could stop it; and the depth, operator
 * and path bounds need a walk of their own anyway. One walk validates and compiles.
 */
export function parseFilter(input: unknown): Filter {
  checkSize(input);
  return compileFilter(input, ROOT, 1, { operators: 0 });
}

/** Size first: it bounds everything the walk below can meet (key counts, string lengths). */
function checkSize(input: unknown): void {
  let json: string | undefined;
  try {
    json = JSON.stringify(input);
  } catch {
    // Circular (not JSON at all) or nested deeply enough to exhaust the stack: either way too big.
    throw new FilterError(ROOT, `is not a JSON document of at most ${FILTER_MAX_BYTES} bytes`);
  }
  if (json !== undefined && utf8Bytes(json, FILTER_MAX_BYTES) > FILTER_MAX_BYTES) {
    throw new FilterError(ROOT, `is larger than ${FILTER_MAX_BYTES} bytes of JSON`);
  }
}

/** UTF-8 length of `s`, counted up to just past `limit` (no Buffer: this module also runs in browsers). */
function utf8Bytes(s: string, limit: number): number {
  let bytes = 0;
  for (let i = 0; i < s.length && bytes <= limit; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4; // a surrogate pair: one 4-byte code point for two UTF-16 units
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function compileFilter(value: unknown, at: string, depth: number, budget: Budget): Filter {
  if (depth > FILTER_MAX_DEPTH) throw new FilterError(at, `nests filters deeper than ${FILTER_MAX_DEPTH} levels`);
  if (!isPlainObject(value)) throw new FilterError(at, `must be a JSON object of conditions, got ${typeName(value)}`);
  const keys = Object.keys(value);
  if (keys.length === 0) {
    throw new FilterError(at, depth === 1 ? 'is empty; send null for no filter' : 'is an empty filter');
  }
  const parts: Filter[] = [];
  for (const key of keys) parts.push(compileEntry(key, value[key], at, depth, budget));
  return parts.length === 1 ? parts[0] : { kind: 'and', filters: parts };
}

function compileEntry(key: string, value: unknown, at: string, depth: number, budget: Budget): Filter {
  const here = child(at, key);
  if (key === '$and' || key === '$or') {
    spend(budget, here);
    return { kind: key === '$and' ? 'and' : 'or', filters: compileList(key, value, here, depth, budget) };
  }
  if (key === '$not') {
    spend(budget, here);
    return { kind: 'not', filter: compileFilter(value, here, depth + 1, budget) };
  }
  if ((FIELD_OPERATORS as readonly string[]).includes(key)) {
    throw new FilterError(here, `${key} compares a field: write {"data.amount": {"${key}": …}}`);
  }
  if (key.startsWith('$')) {
    throw new FilterError(here, `unknown operator ${key}; a filter's keys are dotted paths or ${LOGICAL_OPERATORS.join(', ')}`);
  }
  return compileField(key, parsePath(key, here), value, here, budget);
}

function compileList(op: string, value: unknown, at: string, depth: number, budget: Budget): Filter[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new FilterError(at, `${op} takes a non-empty array of filters, got ${typeName(value)}`);
  }
  const filters: Filter[] = [];
  // Indexed loop, not map: a hole in a sparse array must fail as a non-object, not vanish.
  for (let i = 0; i < value.length; i++) filters.push(compileFilter(value[i], `${at}[${i}]`, depth + 1, budget));
  return filters;
}

function compileField(key: string, segments: Segment[], value: unknown, at: string, budget: Budget): Filter {
  const field = (test: Comparison): Filter => ({ kind: 'field', path: key, segments, test });
  if (isScalar(value)) {
    spend(budget, at);
    return field({ op: '$eq', value });
  }
  if (Array.isArray(value)) {
    throw new FilterError(at, 'a list is not a value; use {"$in": [...]} for one of several values');
  }
  if (!isPlainObject(value)) throw new FilterError(at, `must be a value or an operator object, got ${typeName(value)}`);
  const ops = Object.keys(value);
  if (ops.length === 0) throw new FilterError(at, `needs at least one operator (${FIELD_OPERATORS.join(', ')})`);
  const tests: Filter[] = [];
  for (const op of ops) {
    const here = child(at, op);
    spend(budget, here);
    tests.push(field(compileComparison(key, op, value[op], here)));
  }
  return tests.length === 1 ? tests[0] : { kind: 'and', filters: tests };
}

function compileComparison(key: string, op: string, value: unknown, at: string): Comparison {
  switch (op) {
    case '$eq':
    case '$neq':
      if (isScalar(value)) return { op, value };
      throw new FilterError(at, `${op} takes a string, number, boolean or null, got ${typeName(value)}`);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      if (typeof value === 'string' || isFiniteNumber(value)) return { op, value };
      throw new FilterError(at, `${op} compares with a number or a string, got ${typeName(value)}`);
    case '$in':
    case '$nin':
      return { op, values: compileValues(op, value, at) };
    case '$exists':
      if (typeof value === 'boolean') return { op, value };
      throw new FilterError(at, `$exists takes true or false, got ${typeName(value)}`);
    case '$startsWith':
      if (typeof value === 'string') return { op, value };
      throw new FilterError(at, `$startsWith takes a string, got ${typeName(value)}`);
    case '$not':
      throw new FilterError(at, `$not takes a whole filter: write {"$not": {"${key}": {…}}}`);
    case '$and':
    case '$or':
      throw new FilterError(at, `${op} combines filters: write {"${op}": [{"${key}": …}, …]}`);
  }
  if (!op.startsWith('$')) {
    throw new FilterError(at, `an operator object holds only operators; name a nested field as a dotted path ("${key}.${op}")`);
  }
  throw new FilterError(at, `unknown operator ${op}; use one of ${FIELD_OPERATORS.join(', ')}`);
}

function compileValues(op: string, value: unknown, at: string): Set<Scalar> {
  if (!Array.isArray(value) || value.length === 0) {
    throw new FilterError(at, `${op} takes a non-empty array of values, got ${typeName(value)}`);
  }
  if (value.length > FILTER_MAX_LIST_ITEMS) {
    throw new FilterError(at, `${op} lists at most ${FILTER_MAX_LIST_ITEMS} values, got ${value.length}`);
  }
  const values = new Set<Scalar>();
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isScalar(item)) throw new FilterError(`${at}[${i}]`, `must be a string, number, boolean or null, got ${typeName(item)}`);
    // A Set compares by SameValueZero: type-strict like ===, so "1" and 1 stay distinct.
    values.add(item);
  }
  return values;
}

function parsePath(key: string, at: string): Segment[] {
  if (key.length > FILTER_MAX_PATH_CHARS) throw new FilterError(at, `path is longer than ${FILTER_MAX_PATH_CHARS} characters`);
  const keys = key.split('.');
  if (keys.length > FILTER_MAX_PATH_SEGMENTS) throw new FilterError(at, `path has more than ${FILTER_MAX_PATH_SEGMENTS} segments`);
  for (const k of keys) {
    if (k === '') throw new FilterError(at, 'path has an empty segment (a leading, trailing or doubled dot)');
    if (FORBIDDEN_SEGMENTS.has(k)) throw new FilterError(at, `path segment ${k} is not allowed`);
  }
  if (!ENVELOPE_FIELDS.includes(keys[0])) {
    throw new FilterError(at, `path starts at ${keys[0]}; paths start at ${ENVELOPE_FIELDS.join(', ')} (payload fields are under data: "data.${key}")`);
  }
  if (keys.length > 1 && keys[0] !== 'data') throw new FilterError(at, `${keys[0]} is a string; only data has fields below it`);
  return keys.map((k) => ({ key: k, index: arrayIndex(k) }));
}

/** `0`, `7`, `12` are indexes; `01`, `-1`, `1e3`, `+1` are plain keys. Worked out once, without a regex. */
function arrayIndex(k: string): number {
  if (k.length > 15 || (k.length > 1 && k[0] === '0')) return -1; // 15 digits stay exact in a double
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return Number(k);
}

function spend(budget: Budget, at: string): void {
  budget.operators += 1;
  if (budget.operators > FILTER_MAX_OPERATORS) throw new FilterError(at, `the filter has more than ${FILTER_MAX_OPERATORS} operators`);
}

/** Error paths echo keys; one that is already too long to be valid is shortened so the message stays readable. */
function child(at: string, key: string): string {
  return `${at}.${key.length > FILTER_MAX_PATH_CHARS ? `${key.slice(0, 32)}…` : key}`;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || isFiniteNumber(v);
}

/** Only what JSON.parse makes: a Date, Map or class instance is not a filter, whatever its keys. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' && !Number.isFinite(v)) return 'a non-finite number';
  if (typeof v === 'object') return isPlainObject(v) ? 'an object' : 'a non-JSON object';
  return typeof v === 'undefined' ? 'nothing' : `a ${typeof v}`;
}

/** Stands for a path that leads nowhere; never equal to any JSON value. */
const MISSING: unique symbol = Symbol('missing');

/**
 * Whether `envelope` ({id, type, timestamp, data}, as parsed JSON) passes `filter`. Never throws
 * on JSON input: anything that is not where a path expects it counts as missing. Recursion
 * follows the filter's own nesting, which parseFilter bounds; the payload is only ever read along
 * the filter's paths, so a huge `data` costs no more than a small one.
 */
export function matches(filter: Filter, envelope: unknown): boolean {
  switch (filter.kind) {
    case 'and':
      return filter.filters.every((f) => matches(f, envelope));
    case 'or':
      return filter.filters.some((f) => matches(f, envelope));
    case 'not':
      return !matches(filter.filter, envelope);
    case 'field':
      return compare(filter.test, lookup(envelope, filter.segments));
  }
}

/** Own properties only, so no path can read through to Object.prototype (or Array's `length`). */
function lookup(root: unknown, segments: readonly Segment[]): unknown {
  let current: unknown = root;
  for (const { key, index } of segments) {
    if (Array.isArray(current)) {
      current = index >= 0 && index < current.length ? current[index] : MISSING;
    } else if (current !== null && typeof current === 'object' && Object.hasOwn(current, key)) {
      current = (current as Record<string, unknown>)[key];
    } else {
      return MISSING;
    }
    // undefined is not JSON (a hole in an array, an explicit undefined): treat it as absent.
    if (current === undefined || current === MISSING) return MISSING;
  }
  return current;
}

function compare(test: Comparison, value: unknown): boolean {
  switch (test.op) {
    case '$eq':
      return value === test.value;
    case '$neq':
      return value !== test.value;
    case '$in':
      return test.values.has(value as Scalar);
    case '$nin':
      return !test.values.has(value as Scalar);
    case '$exists':
      return (value !== MISSING) === test.value;
    case '$startsWith':
      return typeof value === 'string' && value.startsWith(test.value);
  }
  // Ordered comparisons only between two numbers or two strings: JavaScript's own coercion
  // ("10" > 9, null >= 0) is exactly what a type-strict filter must not do.
  if (typeof value !== typeof test.value) return false;
  const v = value as number | string;
  switch (test.op) {
    case '$gt':
      return v > test.value;
    case '$gte':
      return v >= test.value;
    case '$lt':
      return v < test.value;
    case '$lte':
      return v <= test.value;
  }
}

const SYMBOLS: Record<Comparison['op'], string> = {
  $eq: '=',
  $neq: '!=',
  $gt: '>',
  $gte: '>=',
  $lt: '<',
  $lte: '<=',
  $in: 'in',
  $nin: 'not in',
  $exists: 'exists',
  $startsWith: 'starts with',
};

/**
 * One line for logs, the portal and `hookline listen`: `data.amount >= 1000 and (type = "a" or
 * not (data.vip exists))`. For people only; the stored JSON stays the filter's one true form.
 */
export function describeFilter(filter: Filter): string {
  const inner = (f: Filter) => (f.kind === 'and' || f.kind === 'or' ? `(${describeFilter(f)})` : describeFilter(f));
  switch (filter.kind) {
    case 'and':
      return filter.filters.map(inner).join(' and ');
    case 'or':
      return filter.filters.map(inner).join(' or ');
    case 'not':
      return `not (${describeFilter(filter.filter)})`;
    case 'field':
      return describeComparison(filter.path, filter.test);
  }
}

function describeComparison(path: string, test: Comparison): string {
  switch (test.op) {
    case '$exists':
      return test.value ? `${path} exists` : `${path} does not exist`;
    case '$in':
    case '$nin':
      return `${path} ${SYMBOLS[test.op]} ${JSON.stringify([...test.values])}`;
    default:
      return `${path} ${SYMBOLS[test.op]} ${JSON.stringify(test.value)}`;
  }
}
