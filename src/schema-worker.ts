// The validation worker thread (started by src/schema-pool.ts): compiles event schemas and runs
// them on event data away from the API's event loop, so a costly schema can only waste this
// thread's time, which the pool cuts off. Compiled validators are cached by key.
import { parentPort } from 'node:worker_threads';
import type { ValidateFunction } from 'ajv';
import { compileEventSchema, EventContractError, runValidator } from './schema-engine';

export interface ValidateRequest {
  id: number;
  /** The version row's id; absent for a one-off check at registration. */
  key?: string;
  /** Sent when the worker may not have the validator yet. */
  schema?: unknown;
  data: unknown;
}

export type ValidateReply =
  | { id: number; issues: { path: string; message: string }[] | null }
  | { id: number; unknownKey: true }
  /** Sent between compiling and validating, so the pool's deadline covers validation alone. */
  | { id: number; compiled: true }
  | { id: number; error: string };

/** Same bound as the API thread's cache: each entry is a few KiB of generated code. */
const CACHE_SIZE = 1000;
const cache = new Map<string, ValidateFunction>();

function validatorFor(req: ValidateRequest): ValidateFunction | null {
  const cached = req.key !== undefined ? cache.get(req.key) : undefined;
  if (cached) return cached;
  if (req.schema === undefined) return null;
  const validate = compileEventSchema(req.schema);
  parentPort!.postMessage({ id: req.id, compiled: true } satisfies ValidateReply);
  if (req.key !== undefined) {
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(req.key, validate);
  }
  return validate;
}

function handle(req: ValidateRequest): ValidateReply {
  try {
    const validate = validatorFor(req);
    if (!validate) return { id: req.id, unknownKey: true };
    return { id: req.id, issues: runValidator(validate, req.data) };
  } catch (err) {
    return { id: req.id, error: err instanceof EventContractError ? err.message : String((err as Error).message ?? err) };
  }
}

parentPort?.on('message', (req: ValidateRequest) => parentPort!.postMessage(handle(req)));
