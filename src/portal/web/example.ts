// An example payload for an event type, from its JSON Schema: the schema's own `examples` (or
// `example`, `default`, `const`, first `enum`) where it gives one, else a value of the declared
// type built from the properties. Shown in the portal's catalogue and sent as a test event's data.
const MAX_DEPTH = 6;

export function exampleFromSchema(schema: unknown, depth = 0): unknown {
  if (typeof schema !== 'object' || schema === null || depth > MAX_DEPTH) return undefined;
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  for (const key of ['example', 'default', 'const'] as const) if (key in s) return s[key];
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
    const first = Array.isArray(s[key]) ? (s[key] as unknown[])[0] : undefined;
    if (first !== undefined) return exampleFromSchema(first, depth + 1);
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = (typeof s.properties === 'object' && s.properties !== null ? s.properties : {}) as Record<string, unknown>;
      for (const [name, sub] of Object.entries(props)) out[name] = exampleFromSchema(sub, depth + 1) ?? null;
      return out;
    }
    case 'array': {
      const item = exampleFromSchema(s.items, depth + 1);
      return item === undefined ? [] : [item];
    }
    case 'string':
      return s.format === 'date-time' ? '2026-01-01T00:00:00Z' : s.format === 'email' ? 'user@example.com' : 'string';
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 0;
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return undefined;
  }
}
