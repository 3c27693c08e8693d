/**
 * Where a DSL call came from: the first stack frame outside the DSL and the
 * bytecode package, as "tools/runqlat.ts:42". Diagnostics print it so a
 * mistake names the tool line that produced the instruction.
 *
 * Every emitted instruction gets one, on the tool's start-up path, and almost
 * none is ever read (only diagnostics and `-v` logs read them). So capturing
 * is split from resolving: {@link captureOrigin} only records V8's raw call
 * sites, a few frames deep (~5 us); turning them into "file:line" (~15 us)
 * happens when `origin` is first read.
 */
const INTERNAL = [
  new URL("./", import.meta.url).pathname, // lib/dsl
  new URL("../../bytecode/", import.meta.url).pathname,
];

/** The V8 call-site methods we use (Error.prepareStackTrace hands these out). */
interface CallSite {
  getFileName(): string | null;
  getLineNumber(): number | null;
}

type StackPreparer = (error: Error, frames: CallSite[]) => unknown;
type V8ErrorConstructor = ErrorConstructor & {
  prepareStackTrace?: StackPreparer;
  stackTraceLimit: number;
};
const V8Error = Error as V8ErrorConstructor;

/** Deep enough to get out of the DSL's own frames (Probe macro -> builder -> emit). */
const FRAMES = 12;

/** A call stack captured by {@link captureOrigin}; `origin` resolves it once, on first read. */
export class CapturedOrigin {
  /** Holds V8's unformatted stack until `origin` is read. */
  #holder: { stack?: unknown } | undefined;
  #origin: string | undefined;

  constructor(holder: { stack?: unknown }) {
    this.#holder = holder;
  }

  /** "tools/runqlat.ts:42", or undefined when every captured frame is inside the DSL. */
  get origin(): string | undefined {
    const holder = this.#holder;
    if (holder) {
      this.#holder = undefined;
      this.#origin = firstOutsideFrame(holder);
    }
    return this.#origin;
  }
}

/**
 * Records the current call stack, cheaply: V8 keeps it unformatted until
 * someone reads it. `skip` and the frames above it are left out.
 */
export function captureOrigin(skip: (...args: never[]) => unknown = captureOrigin): CapturedOrigin {
  const savedLimit = V8Error.stackTraceLimit;
  V8Error.stackTraceLimit = FRAMES;
  const holder: { stack?: unknown } = {};
  Error.captureStackTrace(holder, skip);
  V8Error.stackTraceLimit = savedLimit;
  return new CapturedOrigin(holder);
}

/** The capture behind each instruction's lazy `origin`. */
const capturedOf = new WeakMap<object, CapturedOrigin>();

function readOrigin(this: object): string | undefined {
  return capturedOf.get(this)?.origin;
}

function writeOrigin(this: object, value: string | undefined): void {
  Object.defineProperty(this, "origin", {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * One accessor pair for every instruction: V8 keeps objects whose accessors
 * are the same functions in fast mode, while a closure per instruction would
 * turn each one into a slow dictionary object for everything reading it.
 */
const LAZY_ORIGIN: PropertyDescriptor = {
  get: readOrigin,
  set: writeOrigin,
  enumerable: true,
  configurable: true,
};

/**
 * `insn` with an `origin` read from `captured` when first asked for. It is an
 * own enumerable accessor, so `{ ...insn }` copies the resolved text, and a
 * consumer sees an ordinary `origin?: string` field.
 */
export function withOrigin<T extends object>(insn: T, captured: CapturedOrigin): T {
  capturedOf.set(insn, captured);
  return Object.defineProperty(insn, "origin", LAZY_ORIGIN);
}

/** A copy of `insn` with `changes` applied that keeps a lazy `origin` lazy (a spread would resolve it). */
export function patched<T extends object>(insn: T, changes: Partial<T>): T {
  const captured = capturedOf.get(insn);
  if (!captured || Object.getOwnPropertyDescriptor(insn, "origin")?.get !== readOrigin) {
    return { ...insn, ...changes };
  }
  const copy = {} as Record<string, unknown>;
  for (const key of Object.keys(insn)) {
    if (key !== "origin") copy[key] = (insn as Record<string, unknown>)[key];
  }
  return withOrigin(Object.assign(copy, changes) as T, captured);
}

/** The origin of the code calling the caller, resolved now. */
export function callerOrigin(): string | undefined {
  return captureOrigin(callerOrigin).origin;
}

/** Formats a captured stack as structured call sites (V8 formats on first read of `stack`). */
function firstOutsideFrame(holder: { stack?: unknown }): string | undefined {
  const savedPrepare = V8Error.prepareStackTrace;
  V8Error.prepareStackTrace = (_e, frames) => frames;
  let frames: unknown;
  try {
    frames = holder.stack;
  } finally {
    V8Error.prepareStackTrace = savedPrepare;
  }
  if (!Array.isArray(frames)) return undefined;
  for (const frame of frames as CallSite[]) {
    const name = frame.getFileName();
    // V8 names a file by path, or by file:// URL on some embedders
    const file = name?.startsWith("file://") ? new URL(name).pathname : name;
    if (!file || INTERNAL.some((dir) => file.startsWith(dir))) continue;
    return `${shorten(file)}:${frame.getLineNumber()}`;
  }
  return undefined;
}

function shorten(path: string): string {
  const i = path.search(/\/(tools|lib|tests|bench)\//);
  return i >= 0 ? path.slice(i + 1) : path;
}
