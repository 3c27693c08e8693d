/**
 * How the fsslower tools print an operation: bcc xfsslower's columns (the
 * layout of the "File Systems: xfsslower" output), libbpf-tools fsslower's
 * CSV (-j) and op letters, and the fields of one JSON object per operation.
 *
 *     TIME     COMM           PID    T BYTES   OFF_KB   LAT(ms) FILENAME
 *     21:20:46 java           112789 R 8012    13925      60.16 file.out
 *
 * @module
 */
import { escapeText } from "../format/escape.ts";
import { formatFixed, formatTimeOfDay } from "../format/time.ts";
import { FsOp, type FsOpCode } from "./programs.ts";

/** An operation as decoded from its record. */
export interface FsOperation {
  /** bpf_ktime_get_ns() when it ended (CLOCK_MONOTONIC). */
  endNs: bigint;
  deltaUs: bigint;
  /** Byte offset in the file where it started (0 for opens and fsyncs). */
  offset: bigint;
  /** The syscall's return value: bytes read or written, an fsync's 0 (bcc's BYTES); 0 for opens. */
  size: bigint;
  pid: number;
  op: number;
  task: string;
  file: string;
}

const OP_LETTER: Record<FsOpCode, string> = {
  [FsOp.read]: "R",
  [FsOp.write]: "W",
  [FsOp.open]: "O",
  [FsOp.fsync]: "F",
};

/** R, W, O or F (libbpf-tools' letters; bcc xfsslower writes S for fsync). */
export function opLetter(op: number): string {
  return OP_LETTER[op as FsOpCode] ?? "?";
}

/**
 * The lines printed before the first operation (text mode): bcc's banner
 * ("Tracing XFS operations slower than 10 ms"; `fs` as bcc spells it), and
 * with -d how long.
 */
export function textHeader(fs: string, minMs: number, durationS?: number): string {
  const what = minMs
    ? `Tracing ${fs} operations slower than ${minMs} ms`
    : `Tracing ${fs} operations`;
  const until = durationS ? ` for ${durationS} secs.` : "";
  return `${what}${until}\n` +
    `${"TIME".padEnd(8)} ${"COMM".padEnd(14)} ${"PID".padEnd(6)} T ${"BYTES".padEnd(7)} ` +
    `${"OFF_KB".padEnd(8)} ${"LAT(ms)".padStart(7)} FILENAME\n`;
}

/** bcc's CSV header (-j): the end time in microseconds of the monotonic clock. */
export const CSV_HEADER = "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE\n";

/** One text line: `%-8s %-14.14s %-6s %1s %-7s %-8d %7.2f %s`. */
export function formatText(e: FsOperation, now: Date): string {
  const task = escapeText(e.task).slice(0, 14);
  const latencyMs = formatFixed(Number(e.deltaUs) / 1000, 2);
  return `${formatTimeOfDay(now).padEnd(8)} ${task.padEnd(14)} ${String(e.pid).padEnd(6)} ` +
    `${opLetter(e.op)} ${String(e.size).padEnd(7)} ${String(e.offset / 1024n).padEnd(8)} ` +
    `${latencyMs.padStart(7)} ${escapeText(e.file)}\n`;
}

/** One CSV line, as bcc: `%d,%s,%d,%s,%d,%d,%d,%s` (end time in microseconds). */
export function formatCsv(e: FsOperation): string {
  return `${e.endNs / 1000n},${escapeText(e.task)},${e.pid},${opLetter(e.op)},${e.size},` +
    `${e.offset},${e.deltaUs},${escapeText(e.file)}\n`;
}

/** One JSON object's fields: the numbers the text is made of (end_ns in nanoseconds). */
export function jsonFields(e: FsOperation): Record<string, unknown> {
  return {
    end_ns: Number(e.endNs),
    comm: e.task,
    pid: e.pid,
    type: opLetter(e.op),
    bytes: Number(e.size),
    offset: Number(e.offset),
    latency_us: Number(e.deltaUs),
    file: e.file,
  };
}
