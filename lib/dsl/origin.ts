/**
 * Where a DSL call came from: the first stack frame outside the DSL and the
 * bytecode package, as "tools/runqlat.ts:42". Diagnostics print it so a
 * mistake names the tool line that produced the instruction.
 *
 * This runs for every emitted instruction, on the tool's start-up path, so it
 * asks V8 for structured call sites (no stack text to format and parse), a
 * few frames deep, and remembers the answer per call-site position.
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

export function callerOrigin(): string | undefined {
  const savedPrepare = V8Error.prepareStackTrace;
  const savedLimit = V8Error.stackTraceLimit;
  V8Error.prepareStackTrace = (_e, frames) => frames;
  V8Error.stackTraceLimit = FRAMES;
  const holder: { stack?: CallSite[] } = {};
  Error.captureStackTrace(holder, callerOrigin);
  const frames = holder.stack;
  V8Error.prepareStackTrace = savedPrepare;
  V8Error.stackTraceLimit = savedLimit;
  if (!Array.isArray(frames)) return undefined;
  for (const frame of frames) {
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
