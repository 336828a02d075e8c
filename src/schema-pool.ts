// A small pool of validation worker threads with a deadline per validation. Validation whose cost
// cannot be bounded in advance (schemas with `$ref` or `uniqueItems`, large payloads) runs here:
// a hostile schema/payload pair then costs one worker thread at most VALIDATION_TIMEOUT_MS, the
// worker is replaced, the caller gets a 422, and the API's event loop (health checks, every
// other request) never waits for it.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EventContractError, type ContractIssue } from './schema-engine';
import type { ValidateReply, ValidateRequest } from './schema-worker';

/** Real payloads validate in well under a millisecond; a second is hostile or broken. */
export const VALIDATION_TIMEOUT_MS = 1_000;
/** Compiling a 64 KiB schema is the slow part on first use in a fresh worker; it gets its own deadline. */
const COMPILE_TIMEOUT_MS = 2_000;
/** Two threads: the machines this runs on have few cores, and the API thread needs one. */
const POOL_SIZE = 2;
/** Past this many waiting validations the caller gets a 503 instead of a growing queue. */
const MAX_QUEUE = 256;
/** A worker's heap cap: a schema that allocates without end kills its worker, not the API. */
const WORKER_HEAP_MB = 128;

/** The pool is saturated: the request may be retried later (503). */
export class ValidationUnavailableError extends Error {
  override name = 'ValidationUnavailableError';
}

interface Task {
  key?: string;
  schema: unknown;
  data: unknown;
  resolve(issues: ContractIssue[] | null): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Keys whose validator this worker has compiled (so the schema need not be sent again). */
  known: Set<string>;
  task: Task | null;
  timer: NodeJS.Timeout | null;
}

/** Loads the worker file the way this process loads TypeScript (tsx), or as built JavaScript. */
function spawnWorker(): Worker {
  const ext = path.extname(__filename);
  const file = path.join(__dirname, `schema-worker${ext}`);
  const boot = ext === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();` : '';
  return new Worker(`${boot}require(${JSON.stringify(file)});require('node:worker_threads').parentPort.postMessage('ready');`, {
    eval: true,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  });
}

export class SchemaValidatorPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  /** Validations asked for and not yet answered: while there are any, the workers keep the process alive. */
  private pending = 0;

  /** Validates `data` in a worker; resolves with the issues (null when valid). */
  validate(key: string | undefined, schema: unknown, data: unknown): Promise<ContractIssue[] | null> {
    if (this.queue.length >= MAX_QUEUE) {
      return Promise.reject(new ValidationUnavailableError('too many event validations are waiting; retry shortly'));
    }
    this.hold(1);
    return new Promise<ContractIssue[] | null>((resolve, reject) => {
      this.queue.push({ key, schema, data, resolve, reject });
      while (this.slots.length < POOL_SIZE) this.slots.push(this.startSlot());
      this.dispatch();
    }).finally(() => this.hold(-1));
  }

  /** An idle pool must not keep a process alive (the producer library's caller, a CLI command); a busy one must. */
  private hold(delta: number): void {
    const before = this.pending;
    this.pending += delta;
    if ((before === 0) !== (this.pending === 0)) for (const s of this.slots) this.setRef(s);
  }

  private setRef(slot: Slot): void {
    if (this.pending > 0) slot.worker.ref();
    else slot.worker.unref();
  }

  private startSlot(): Slot {
    const slot: Slot = { worker: spawnWorker(), ready: false, known: new Set(), task: null, timer: null };
    slot.worker.on('message', (m: ValidateReply | 'ready') => {
      if (m === 'ready') {
        slot.ready = true;
        this.dispatch();
      } else this.finish(slot, m);
    });
    // Out of memory, or a crash: the task fails and a fresh worker takes the slot.
    slot.worker.on('error', (err) => this.replace(slot, new EventContractError('schema_unusable', `data: cannot be validated (${err.message})`, [{ path: 'data', message: err.message }])));
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    this.setRef(slot);
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.task || this.queue.length === 0) continue;
      const task = this.queue.shift()!;
      const sendSchema = task.key === undefined || !slot.known.has(task.key);
      const req: ValidateRequest = { id: 0, key: task.key, data: task.data, ...(sendSchema ? { schema: task.schema } : {}) };
      slot.task = task;
      this.arm(slot, sendSchema ? COMPILE_TIMEOUT_MS : VALIDATION_TIMEOUT_MS, sendSchema ? 'compiling the schema' : 'validation');
      slot.worker.postMessage(req);
    }
  }

  /** (Re)starts the deadline of the slot's task. */
  private arm(slot: Slot, ms: number, what: string): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.replace(slot, timeoutError(what, ms)), ms);
  }

  private finish(slot: Slot, reply: ValidateReply): void {
    if ('compiled' in reply) return this.arm(slot, VALIDATION_TIMEOUT_MS, 'validation');
    const task = slot.task;
    this.release(slot);
    if (!task) return;
    if ('unknownKey' in reply) {
      // The worker evicted this validator: ask again with the schema.
      slot.known.delete(task.key!);
      this.queue.unshift(task);
    } else if ('error' in reply) {
      task.reject(new EventContractError('schema_unusable', `data: cannot be validated (${reply.error})`, [{ path: 'data', message: reply.error }]));
    } else {
      if (task.key !== undefined) {
        if (slot.known.size >= 1000) slot.known.clear();
        slot.known.add(task.key);
      }
      task.resolve(reply.issues);
    }
    this.dispatch();
  }

  private release(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.task = null;
  }

  /** Ends a worker that overran or died, fails its task, and puts a fresh worker in its place. */
  private replace(slot: Slot, err: Error): void {
    const task = slot.task;
    this.release(slot);
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {}); // it is being terminated; nothing it says matters now
    void slot.worker.terminate();
    this.slots[i] = this.startSlot();
    task?.reject(err);
  }
}

function timeoutError(what: string, ms: number): EventContractError {
  const message = `${what} took longer than ${ms} ms and was stopped; this schema is too costly for this payload`;
  return new EventContractError('validation_timeout', `data: ${message}`, [{ path: 'data', message }]);
}

/** The process's pool, started on first use. */
export const schemaPool = new SchemaValidatorPool();
