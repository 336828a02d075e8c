// Payload filters (src/event-filter.ts): the operator table, type strictness, missing paths and
// arrays, every refusal with the path it names, and properties over arbitrary JSON. Pure unit
// tests: no server, no database.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  describeFilter,
  FILTER_MAX_BYTES,
  FILTER_MAX_DEPTH,
  FILTER_MAX_LIST_ITEMS,
  FILTER_MAX_OPERATORS,
  FILTER_MAX_PATH_CHARS,
  FILTER_MAX_PATH_SEGMENTS,
  FilterError,
  matches,
  parseFilter,
} from '../src/event-filter';

/** An envelope as delivered on the wire, with `data` as given. */
function envelope(data: unknown): Record<string, unknown> {
  return { id: 'evt_1', type: 'invoice.paid', timestamp: '2026-11-29T10:00:00.000Z', data };
}

function check(filter: unknown, data: unknown): boolean {
  return matches(parseFilter(filter), envelope(data));
}

/** The FilterError parseFilter throws for `input`; fails the test when it accepts the input. */
function refusal(input: unknown): FilterError {
  try {
    parseFilter(input);
  } catch (err) {
    expect(err).toBeInstanceOf(FilterError);
    return err as FilterError;
  }
  throw new Error(`parseFilter accepted ${JSON.stringify(input)}`);
}

function nestNot(levels: number): Record<string, unknown> {
  let f: Record<string, unknown> = { type: 'invoice.paid' };
  for (let i = 0; i < levels; i++) f = { $not: f };
  return f;
}

describe('operators: one row each, a matching and a non-matching payload', () => {
  const table: Array<[string, unknown, unknown, unknown]> = [
    ['a bare value ($eq)', { 'data.currency': 'EUR' }, { currency: 'EUR' }, { currency: 'USD' }],
    ['$eq', { 'data.amount': { $eq: 1000 } }, { amount: 1000 }, { amount: 999 }],
    ['$neq', { 'data.currency': { $neq: 'EUR' } }, { currency: 'USD' }, { currency: 'EUR' }],
    ['$gt', { 'data.amount': { $gt: 1000 } }, { amount: 1001 }, { amount: 1000 }],
    ['$gte', { 'data.amount': { $gte: 1000 } }, { amount: 1000 }, { amount: 999 }],
    ['$lt', { 'data.amount': { $lt: 1000 } }, { amount: 999 }, { amount: 1000 }],
    ['$lte', { 'data.amount': { $lte: 1000 } }, { amount: 1000 }, { amount: 1001 }],
    ['$in', { 'data.currency': { $in: ['EUR', 'USD'] } }, { currency: 'USD' }, { currency: 'GBP' }],
    ['$nin', { 'data.currency': { $nin: ['EUR', 'USD'] } }, { currency: 'GBP' }, { currency: 'EUR' }],
    ['$exists: true', { 'data.coupon': { $exists: true } }, { coupon: null }, {}],
    ['$exists: false', { 'data.coupon': { $exists: false } }, {}, { coupon: 'WINTER' }],
    ['$startsWith', { 'data.sku': { $startsWith: 'PRO-' } }, { sku: 'PRO-42' }, { sku: 'pro-42' }],
    [
      '$and',
      { $and: [{ 'data.amount': { $gte: 1000 } }, { 'data.currency': 'EUR' }] },
      { amount: 1000, currency: 'EUR' },
      { amount: 1000, currency: 'USD' },
    ],
    [
      '$or',
      { $or: [{ 'data.amount': { $gte: 1000 } }, { 'data.currency': 'EUR' }] },
      { amount: 1, currency: 'EUR' },
      { amount: 1, currency: 'USD' },
    ],
    ['$not', { $not: { 'data.currency': 'EUR' } }, { currency: 'USD' }, { currency: 'EUR' }],
  ];
  it.each(table)('%s', (_name, filter, yes, no) => {
    expect(check(filter, yes)).toBe(true);
    expect(check(filter, no)).toBe(false);
  });
});

describe('combining conditions', () => {
  it('ANDs the keys of one object, and the operators of one operator object', () => {
    const f = { type: 'invoice.paid', 'data.amount': { $gte: 1000, $lt: 5000 }, 'data.currency': { $in: ['EUR', 'USD'] } };
    expect(check(f, { amount: 1000, currency: 'EUR' })).toBe(true);
    expect(check(f, { amount: 5000, currency: 'EUR' })).toBe(false);
    expect(check(f, { amount: 1000, currency: 'GBP' })).toBe(false);
    expect(matches(parseFilter(f), { ...envelope({ amount: 1000, currency: 'EUR' }), type: 'invoice.created' })).toBe(false);
  });
  it('nests $and, $or and $not', () => {
    // Big EUR or USD payments, unless they are tests.
    const f = {
      $and: [
        { $or: [{ 'data.currency': 'EUR' }, { 'data.currency': 'USD' }] },
        { 'data.amount': { $gte: 1000 } },
        { $not: { $or: [{ 'data.test': true }, { 'data.customer.id': { $startsWith: 'cus_test_' } }] } },
      ],
    };
    expect(check(f, { currency: 'USD', amount: 1000, customer: { id: 'cus_1' } })).toBe(true);
    expect(check(f, { currency: 'USD', amount: 1000, test: true })).toBe(false);
    expect(check(f, { currency: 'USD', amount: 1000, customer: { id: 'cus_test_1' } })).toBe(false);
    expect(check(f, { currency: 'GBP', amount: 1000 })).toBe(false);
    expect(check(f, { currency: 'EUR', amount: 999 })).toBe(false);
  });
  it('reads the envelope fields id, type and timestamp as well as data', () => {
    expect(check({ id: 'evt_1', type: { $startsWith: 'invoice.' } }, {})).toBe(true);
    expect(check({ timestamp: { $gte: '2026-11-29T00:00:00.000Z', $lt: '2026-11-30T00:00:00.000Z' } }, {})).toBe(true);
    expect(check({ timestamp: { $lt: '2026-11-29T00:00:00.000Z' } }, {})).toBe(false);
  });
});

describe('type strictness', () => {
  it('never equals across types', () => {
    expect(check({ 'data.amount': 1000 }, { amount: '1000' })).toBe(false);
    expect(check({ 'data.amount': '1000' }, { amount: 1000 })).toBe(false);
    expect(check({ 'data.flag': true }, { flag: 1 })).toBe(false);
    expect(check({ 'data.flag': 0 }, { flag: false })).toBe(false);
    expect(check({ 'data.currency': { $in: ['1', 'EUR'] } }, { currency: 1 })).toBe(false);
    expect(check({ 'data.currency': { $in: [1] } }, { currency: '1' })).toBe(false);
  });
  it('orders only two numbers or two strings, never by JavaScript coercion', () => {
    expect(check({ 'data.amount': { $gt: 999 } }, { amount: '1000' })).toBe(false);
    expect(check({ 'data.amount': { $lt: '9' } }, { amount: 10 })).toBe(false);
    expect(check({ 'data.amount': { $gte: 0 } }, { amount: null })).toBe(false); // null >= 0 in JavaScript
    expect(check({ 'data.amount': { $lte: 1 } }, { amount: true })).toBe(false); // true <= 1 in JavaScript
    expect(check({ 'data.amount': { $gte: 0 } }, { amount: [5] })).toBe(false); // [5] >= 0 in JavaScript
    expect(check({ 'data.version': { $gt: '10' } }, { version: '9' })).toBe(true); // strings order by code unit
  });
  it('null equals only null, and a missing field is not null', () => {
    expect(check({ 'data.coupon': null }, { coupon: null })).toBe(true);
    expect(check({ 'data.coupon': null }, {})).toBe(false);
    expect(check({ 'data.coupon': null }, { coupon: 0 })).toBe(false);
  });
  it('$startsWith needs a string value', () => {
    expect(check({ 'data.code': { $startsWith: '12' } }, { code: 123 })).toBe(false);
    expect(check({ 'data.code': { $startsWith: '12' } }, { code: ['123'] })).toBe(false);
  });
});

describe('missing paths and odd payloads', () => {
  // The value of every operator against a missing field: only the negations hold.
  const onMissing: Array<[string, unknown, boolean]> = [
    ['$eq', 1, false],
    ['$neq', 1, true],
    ['$gt', 1, false],
    ['$gte', 1, false],
    ['$lt', 1, false],
    ['$lte', 1, false],
    ['$in', [1], false],
    ['$nin', [1], true],
    ['$exists', true, false],
    ['$exists', false, true],
    ['$startsWith', '', false],
  ];
  it.each(onMissing)('%s %j against a missing field is %s', (op, operand, expected) => {
    expect(check({ 'data.x.y': { [op]: operand } }, {})).toBe(expected);
    expect(check({ 'data.x.y': { [op]: operand } }, { x: null })).toBe(expected);
    expect(check({ 'data.x.y': { [op]: operand } }, { x: 'a string has no fields' })).toBe(expected);
  });
  it('never throws whatever the envelope is', () => {
    const f = parseFilter({ 'data.a.0.b': { $exists: false }, type: { $neq: 'x' } });
    for (const e of [null, undefined, 42, 'evt', [], [1, 2], {}, { data: null }, { data: [[]] }, { data: { a: 'x' } }]) {
      expect(matches(f, e)).toBe(true);
    }
  });
  it('reads own properties only, never the prototype', () => {
    expect(check({ 'data.toString': { $exists: false } }, {})).toBe(true);
    expect(check({ 'data.hasOwnProperty': { $exists: true } }, {})).toBe(false);
    expect(check({ 'data.toString': 'x' }, JSON.parse('{"toString": "x"}'))).toBe(true);
  });
});

describe('arrays', () => {
  const data = { items: [{ sku: 'PRO-1' }, { sku: 'BASIC' }], tags: ['vip'], byIndex: { '0': 'zero' } };
  it('selects an element by a decimal index segment', () => {
    expect(check({ 'data.items.0.sku': 'PRO-1' }, data)).toBe(true);
    expect(check({ 'data.items.1.sku': { $startsWith: 'BAS' } }, data)).toBe(true);
    expect(check({ 'data.items.1.sku': 'PRO-1' }, data)).toBe(false);
  });
  it('treats an index past the end, a non-canonical index and `length` as missing', () => {
    expect(check({ 'data.items.2': { $exists: false } }, data)).toBe(true);
    expect(check({ 'data.items.01.sku': { $exists: false } }, data)).toBe(true);
    expect(check({ 'data.items.-1': { $exists: false } }, data)).toBe(true);
    expect(check({ 'data.items.length': { $exists: false } }, data)).toBe(true);
  });
  it('reads an index segment as a key on an object', () => {
    expect(check({ 'data.byIndex.0': 'zero' }, data)).toBe(true);
  });
  it('never compares a whole array with a value', () => {
    expect(check({ 'data.tags': 'vip' }, data)).toBe(false);
    expect(check({ 'data.tags': { $in: ['vip'] } }, data)).toBe(false);
    expect(check({ 'data.tags.0': { $in: ['vip'] } }, data)).toBe(true);
  });
});

describe('refusals name the path of the offending part', () => {
  it.each([
    ['a string', 'type = invoice.paid'],
    ['an array', [{ type: 'a' }]],
    ['null', null],
    ['a number', 42],
    ['a boolean', true],
    ['nothing', undefined],
    ['a Date', new Date()],
  ])('refuses %s as a filter', (_name, input) => {
    const err = refusal(input);
    expect(err.path).toBe('filter');
    expect(err.message).toMatch(/^filter: must be a JSON object/);
  });
  it('refuses an empty filter, which would match every event', () => {
    expect(refusal({}).path).toBe('filter');
    expect(refusal({ $not: {} }).path).toBe('filter.$not');
  });
  it('names an unknown operator where it stands', () => {
    expect(refusal({ $or: [{ type: 'a' }, { 'data.amount': { $regex: '^1' } }] }).path).toBe('filter.$or[1].data.amount.$regex');
    expect(refusal({ $where: 'this.amount > 1' }).path).toBe('filter.$where');
    expect(refusal({ $gte: 5 }).message).toContain('compares a field');
  });
  it('names a wrong operand', () => {
    expect(refusal({ $or: [{ type: 'a' }, { 'data.amount': { $gte: true } }] }).path).toBe('filter.$or[1].data.amount.$gte');
    expect(refusal({ 'data.amount': { $eq: { value: 1 } } }).path).toBe('filter.data.amount.$eq');
    expect(refusal({ 'data.amount': { $lt: null } }).path).toBe('filter.data.amount.$lt');
    expect(refusal({ 'data.coupon': { $exists: 'yes' } }).path).toBe('filter.data.coupon.$exists');
    expect(refusal({ 'data.sku': { $startsWith: 5 } }).path).toBe('filter.data.sku.$startsWith');
    expect(refusal({ 'data.currency': { $in: 'EUR' } }).path).toBe('filter.data.currency.$in');
    expect(refusal({ 'data.currency': { $nin: [] } }).path).toBe('filter.data.currency.$nin');
    expect(refusal({ 'data.currency': { $in: ['EUR', 'USD', ['GBP']] } }).path).toBe('filter.data.currency.$in[2]');
    expect(refusal({ 'data.amount': { $gt: Number.NaN } }).path).toBe('filter.data.amount.$gt');
    expect(refusal({ 'data.amount': {} }).path).toBe('filter.data.amount');
  });
  it('names a misused logical operator', () => {
    expect(refusal({ $and: { type: 'a' } }).path).toBe('filter.$and');
    expect(refusal({ $or: [] }).path).toBe('filter.$or');
    expect(refusal({ $or: [{ type: 'a' }, 'type = b'] }).path).toBe('filter.$or[1]');
    expect(refusal({ $not: [{ type: 'a' }] }).path).toBe('filter.$not');
    expect(refusal({ 'data.amount': { $not: { $gte: 5 } } }).path).toBe('filter.data.amount.$not');
    expect(refusal({ 'data.amount': { $or: [{ $gte: 5 }] } }).path).toBe('filter.data.amount.$or');
  });
  it('refuses a list or a nested object as a bare value, pointing at $in and dotted paths', () => {
    expect(refusal({ 'data.currency': ['EUR', 'USD'] })).toMatchObject({ path: 'filter.data.currency', message: expect.stringContaining('$in') });
    const nested = refusal({ 'data.customer': { id: 'cus_1' } });
    expect(nested.path).toBe('filter.data.customer.id');
    expect(nested.message).toContain('"data.customer.id"');
  });
  it('refuses paths outside the envelope, malformed paths and paths too long', () => {
    expect(refusal({ amount: 1 })).toMatchObject({ path: 'filter.amount', message: expect.stringContaining('"data.amount"') });
    expect(refusal({ 'type.name': 'a' }).path).toBe('filter.type.name');
    expect(refusal({ 'data..amount': 1 }).path).toBe('filter.data..amount');
    expect(refusal({ 'data.amount.': 1 }).path).toBe('filter.data.amount.');
    const segments = ['data', ...Array.from({ length: FILTER_MAX_PATH_SEGMENTS }, (_, i) => `s${i}`)].join('.');
    expect(refusal({ [segments]: 1 }).path).toBe(`filter.${segments}`);
    const long = `data.${'a'.repeat(FILTER_MAX_PATH_CHARS)}`;
    const err = refusal({ [long]: 1 });
    expect(err.path).toBe(`filter.${long.slice(0, 32)}…`); // shortened: it is echoed back
    expect(err.message).toContain(`longer than ${FILTER_MAX_PATH_CHARS}`);
  });
  it('refuses prototype keys anywhere in a path', () => {
    // JSON.parse makes __proto__ an own key, as a request body would.
    expect(refusal(JSON.parse('{"__proto__": {"polluted": true}}')).path).toBe('filter.__proto__');
    expect(refusal(JSON.parse('{"data.__proto__.polluted": true}')).path).toBe('filter.data.__proto__.polluted');
    expect(refusal({ 'data.constructor': 'Object' }).path).toBe('filter.data.constructor');
    expect(refusal({ $or: [{ 'data.a.prototype': 1 }] }).path).toBe('filter.$or[0].data.a.prototype');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('bounds against hostile filters', () => {
  it(`accepts ${FILTER_MAX_DEPTH} levels of filters and refuses one more, at the level past the bound`, () => {
    expect(check(nestNot(FILTER_MAX_DEPTH - 1), {})).toBe((FILTER_MAX_DEPTH - 1) % 2 === 0); // true under an even number of $not
    const err = refusal(nestNot(FILTER_MAX_DEPTH));
    expect(err.path).toBe(`filter${'.$not'.repeat(FILTER_MAX_DEPTH)}`);
    expect(err.message).toContain(`deeper than ${FILTER_MAX_DEPTH}`);
  });
  it('counts $and/$or levels the same way', () => {
    let f: unknown = { type: 'a' };
    for (let i = 0; i < FILTER_MAX_DEPTH; i++) f = { $or: [f] };
    expect(refusal(f).path).toBe(`filter${'.$or[0]'.repeat(FILTER_MAX_DEPTH)}`);
  });
  it('refuses a filter nested 100,000 deep without overflowing the stack', () => {
    expect(refusal(nestNot(100_000)).path).toBe('filter');
  });
  it(`refuses more than ${FILTER_MAX_BYTES} bytes of JSON, counted in UTF-8`, () => {
    expect(refusal({ 'data.note': 'x'.repeat(FILTER_MAX_BYTES) })).toMatchObject({ path: 'filter', message: expect.stringContaining('larger than') });
    // 3,000 characters, 9,000 bytes: the bound is on bytes.
    expect(refusal({ 'data.note': '€'.repeat(3000) }).path).toBe('filter');
    expect(() => parseFilter({ 'data.note': 'x'.repeat(FILTER_MAX_BYTES - 100) })).not.toThrow();
  });
  it('refuses a circular object', () => {
    const f: Record<string, unknown> = { type: 'a' };
    f.$not = f;
    expect(refusal(f).path).toBe('filter');
  });
  it(`accepts ${FILTER_MAX_OPERATORS} operators and names the one past the bound`, () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`data.k${i}`, i]));
    expect(() => parseFilter(keys(FILTER_MAX_OPERATORS))).not.toThrow();
    const err = refusal(keys(FILTER_MAX_OPERATORS + 1));
    expect(err.path).toBe(`filter.data.k${FILTER_MAX_OPERATORS}`);
    expect(err.message).toContain(`more than ${FILTER_MAX_OPERATORS} operators`);
  });
  it('counts logical operators and operators inside operator objects', () => {
    const ranges = Array.from({ length: FILTER_MAX_OPERATORS / 2 }, (_, i) => ({ [`data.k${i}`]: { $gte: 0, $lt: 10 } }));
    const err = refusal({ $and: ranges }); // 1 $and + 64 comparisons
    expect(err.path).toBe(`filter.$and[${FILTER_MAX_OPERATORS / 2 - 1}].data.k${FILTER_MAX_OPERATORS / 2 - 1}.$lt`);
  });
  it(`accepts ${FILTER_MAX_LIST_ITEMS} values in $in and refuses one more`, () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);
    expect(check({ 'data.currency': { $in: list(FILTER_MAX_LIST_ITEMS) } }, { currency: `c${FILTER_MAX_LIST_ITEMS - 1}` })).toBe(true);
    const err = refusal({ 'data.currency': { $nin: list(FILTER_MAX_LIST_ITEMS + 1) } });
    expect(err.path).toBe('filter.data.currency.$nin');
    expect(err.message).toContain(`at most ${FILTER_MAX_LIST_ITEMS}`);
  });
});

describe('FilterError and describeFilter', () => {
  it('is one error class whose message starts with its path', () => {
    const err = refusal({ 'data.amount': { $gte: 'a', $regex: 'x' } });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FilterError');
    expect(err.message).toBe(`${err.path}: ${err.reason}`);
  });
  it('describes a filter on one line', () => {
    const f = parseFilter({
      type: 'invoice.paid',
      'data.amount': { $gte: 1000 },
      'data.currency': { $in: ['EUR', 'USD'] },
      $or: [{ 'data.tier': 'gold' }, { $not: { 'data.test': { $exists: true } } }],
    });
    expect(describeFilter(f)).toBe(
      'type = "invoice.paid" and data.amount >= 1000 and data.currency in ["EUR","USD"] and (data.tier = "gold" or not (data.test exists))',
    );
  });
});

describe('properties', () => {
  const paths = ['id', 'type', 'timestamp', 'data', 'data.amount', 'data.currency', 'data.items.0.sku', 'data.items.1', 'data.customer.tier', 'data.flag'];
  const scalar = fc.oneof(
    fc.string({ maxLength: 4 }),
    fc.integer({ min: -3, max: 3 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
  );
  const ordered = fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -3, max: 3 }));
  const condition = fc.oneof(
    scalar,
    fc.record({ $eq: scalar }),
    fc.record({ $neq: scalar }),
    fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), ordered).map(([op, v]) => ({ [op]: v })),
    fc.tuple(fc.constantFrom('$in', '$nin'), fc.array(scalar, { minLength: 1, maxLength: 4 })).map(([op, v]) => ({ [op]: v })),
    fc.record({ $exists: fc.boolean() }),
    fc.record({ $startsWith: fc.string({ maxLength: 2 }) }),
    fc.record({ $gte: fc.integer({ min: -3, max: 0 }), $lte: fc.integer({ min: 0, max: 3 }) }),
  );
  // At most 4 levels and about two dozen operators: always inside the bounds.
  const { filter } = fc.letrec((tie) => ({
    filter: fc.oneof(
      { maxDepth: 3 },
      fc.dictionary(fc.constantFrom(...paths), condition, { minKeys: 1, maxKeys: 2 }),
      fc.record({ $and: fc.array(tie('filter'), { minLength: 1, maxLength: 2 }) }),
      fc.record({ $or: fc.array(tie('filter'), { minLength: 1, maxLength: 2 }) }),
      fc.record({ $not: tie('filter') }),
    ),
  }));
  // Payloads shaped like the paths above (so conditions are often decided by real values),
  // mixed with arbitrary JSON where they are not.
  const field = (shaped: fc.Arbitrary<unknown>) => fc.oneof(shaped, fc.jsonValue({ maxDepth: 2 }));
  const data = fc.record(
    {
      amount: field(fc.integer({ min: -3, max: 3 })),
      currency: field(fc.constantFrom('EUR', 'USD', '')),
      items: field(fc.array(field(fc.record({ sku: fc.string({ maxLength: 3 }) })), { maxLength: 3 })),
      customer: field(fc.record({ tier: scalar })),
      flag: scalar,
    },
    { requiredKeys: [] },
  );
  const shapedEnvelope = fc.record(
    { id: fc.string({ maxLength: 3 }), type: fc.constantFrom('invoice.paid', 'a'), timestamp: fc.string({ maxLength: 3 }), data: field(data) },
    { requiredKeys: [] },
  );
  const anyEnvelope = fc.oneof(shapedEnvelope, fc.jsonValue());

  it('matches never throws on any JSON payload for a valid filter, and $not inverts it', () => {
    fc.assert(
      fc.property(filter, anyEnvelope, (f, e) => {
        const result = matches(parseFilter(f), e);
        expect(typeof result).toBe('boolean');
        expect(matches(parseFilter({ $not: f }), e)).toBe(!result);
      }),
      { numRuns: 1000 },
    );
  });
  it('parseFilter either compiles or throws a FilterError, whatever JSON it is given', () => {
    const keys = fc.constantFrom(...paths, '$and', '$or', '$not', '$eq', '$in', '$exists', '$gte', '$startsWith', '$x', 'data.__proto__', 'x');
    const filterish = fc.letrec((tie) => ({
      node: fc.oneof(
        { maxDepth: 4 },
        fc.jsonValue({ maxDepth: 1 }),
        fc.dictionary(keys, tie('node'), { maxKeys: 3 }),
        fc.array(tie('node'), { maxLength: 3 }),
      ),
    })).node;
    fc.assert(
      fc.property(fc.oneof(filterish, fc.jsonValue()), anyEnvelope, (input, e) => {
        let compiled;
        try {
          compiled = parseFilter(input);
        } catch (err) {
          expect(err).toBeInstanceOf(FilterError);
          expect((err as FilterError).path).toMatch(/^filter/);
          return;
        }
        expect(typeof matches(compiled, e)).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });
});
