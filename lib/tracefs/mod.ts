/**
 * tracefs: where it is mounted, and the layout of tracepoint records.
 *
 * @example
 * ```ts
 * import { readTracepointFormat } from "./mod.ts";
 * const fmt = readTracepointFormat("sched", "sched_switch");
 * console.log(fmt.id, fmt.field("prev_pid").offset);
 * ```
 *
 * @module
 */

export {
  locateTracefs,
  realTracefsSystem,
  TRACEFS_CANDIDATES,
  tracefsRoot,
  type TracefsSystem,
} from "./tracefs_root.ts";
export {
  parseTracepointFormat,
  readTracepointFormat,
  recordedFormatReader,
  type TracepointField,
  type TracepointFormat,
  type TracepointFormatReader,
  TracepointNotFoundError,
} from "./format.ts";
