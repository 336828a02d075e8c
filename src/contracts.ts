// Event contracts: whether an event may be recorded, judged by its registered type — the type
// must exist (unless unregistered types are accepted), the version must exist, and `data` must
// satisfy that version's JSON Schema. Shared by POST /v1/events and the producer library.
//
// How a schema is compiled and bounded lives in src/schema-engine.ts. Validation runs on this
// thread only when its cost is provably small (a schema without `$ref` or `uniqueItems`, times a
// small payload); anything else runs in the worker pool of src/schema-pool.ts, under a deadline,
// so no schema/payload pair can stall the API.
import type { ClientBase, Pool } from 'pg';
import type { ValidateFunction } from 'ajv';
import { getVersionSchema, lookupEventContract } from './db/event-types';
import {
  compileEventSchema,
  dataSize,
  EventContractError,
  RECURSION_MESSAGE,
  runValidator,
  summarize,
  treeSchemaSize,
  type ContractIssue,
} from './schema-engine';
import { schemaPool } from './schema-pool';

export { compileEventSchema, EventContractError, SCHEMA_MAX_BYTES, SCHEMA_MAX_DEPTH, type ContractIssue } from './schema-engine';

/** Compiled validators kept per process. Each is a few KiB of generated code. */
const VALIDATOR_CACHE_SIZE = 1000;
/**
 * Schema objects × data size below which validation runs inline: each unit is one keyword
 * check on one value, well under a microsecond, so inline validation stays under a few ms.
 */
const INLINE_BUDGET = 200_000;

// Keyed by the version row's id, a ULID no other database shares: versions are immutable, so an
// entry never goes stale and is only dropped to bound memory (oldest first).
interface CompiledVersion {
  schema: unknown;
  validate: ValidateFunction;
  /** treeSchemaSize: null when the cost of validation has no bound known in advance. */
  treeSize: number | null;
}
const validators = new Map<string, CompiledVersion>();

async function validatorFor(db: Pool | ClientBase, versionId: string): Promise<CompiledVersion> {
  const cached = validators.get(versionId);
  if (cached) return cached;
  const schema = await getVersionSchema(db, versionId);
  // Validated when it was registered; a throw here means the schema was stored some other way.
  const compiled = { schema, validate: compileEventSchema(schema, `event type version ${versionId}`), treeSize: treeSchemaSize(schema) };
  if (validators.size >= VALIDATOR_CACHE_SIZE) validators.delete(validators.keys().next().value!);
  validators.set(versionId, compiled);
  return compiled;
}

/** Inline when the bound allows it, else in a worker with a deadline. */
async function validateData(versionId: string, c: CompiledVersion, data: unknown): Promise<ContractIssue[] | null> {
  if (c.treeSize !== null && c.treeSize * dataSize(data, INLINE_BUDGET / c.treeSize) <= INLINE_BUDGET) return runValidator(c.validate, data);
  return schemaPool.validate(versionId, c.schema, data);
}

/**
 * Compiles a schema about to be registered and tries it on `{}` in a worker: a schema that
 * refers to itself without end compiles fine and then overflows the stack on every event, and
 * one that is too costly even for an empty object is useless. Throws EventContractError
 * ('invalid_schema') naming `root`.
 */
export async function assertUsableSchema(schema: unknown, root = 'schema'): Promise<void> {
  compileEventSchema(schema, root);
  let issues: ContractIssue[] | null;
  try {
    issues = await schemaPool.validate(undefined, schema, {});
  } catch (err) {
    if (err instanceof EventContractError) throw new EventContractError('invalid_schema', `${root}: ${err.details[0]?.message ?? err.message}`, [{ path: root, message: err.details[0]?.message ?? err.message }]);
    throw err;
  }
  if (issues?.some((i) => i.message === RECURSION_MESSAGE)) {
    const message = 'refers to itself without end ($ref cycle): every event would fail';
    throw new EventContractError('invalid_schema', `${root}: ${message}`, [{ path: root, message }]);
  }
}

export interface ContractInput {
  type: string;
  /** Absent: the latest version of a registered type. */
  version?: number | null;
  data: unknown;
}

export interface ContractResult {
  /** The version to record on the event (null: no schema applies). */
  version: number | null;
  /** Set when the type is deprecated: the event is accepted, the producer should be told. */
  deprecatedAt: Date | null;
}

/** Checks an event against its type's contract; throws EventContractError when it breaks it. */
export async function checkEventContract(
  db: Pool | ClientBase,
  e: ContractInput,
  opts: { acceptUnregistered: boolean },
): Promise<ContractResult> {
  const requested = e.version ?? null;
  const c = await lookupEventContract(db, e.type, requested);
  if (!c.registered) {
    if (!opts.acceptUnregistered) {
      const message = `event type ${e.type} is not registered (register it with POST /v1/event-types)`;
      throw new EventContractError('unregistered_event_type', `type: ${message}`, [{ path: 'type', message }]);
    }
    return { version: requested, deprecatedAt: null };
  }
  if (!c.version) {
    if (requested === null) return { version: null, deprecatedAt: c.deprecatedAt };
    const message = c.latestVersion
      ? `event type ${e.type} has no version ${requested} (latest is ${c.latestVersion})`
      : `event type ${e.type} has no schema versions`;
    throw new EventContractError('unknown_event_version', `version: ${message}`, [{ path: 'version', message }]);
  }
  const issues = await validateData(c.version.id, await validatorFor(db, c.version.id), e.data);
  if (issues) {
    const code = issues.some((i) => i.message === RECURSION_MESSAGE) ? 'schema_unusable' : 'schema_violation';
    throw new EventContractError(code, summarize(issues), issues);
  }
  return { version: c.version.number, deprecatedAt: c.deprecatedAt };
}
