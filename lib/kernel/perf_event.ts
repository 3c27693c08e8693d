/** perf_event_open(2), the way in for tracepoint and sampling attachments. */
import { BpfError } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { lastErrno, libc } from "./libc.ts";

const SYS_PERF_EVENT_OPEN = 298n; // x86_64
const PERF_FLAG_FD_CLOEXEC = 8n;
const ATTR_SIZE = 128; // PERF_ATTR_SIZE_VER7

export const PERF_TYPE = { HARDWARE: 0, SOFTWARE: 1, TRACEPOINT: 2 } as const;
export const PERF_COUNT_SW_CPU_CLOCK = 0;
const PERF_SAMPLE_RAW = 1n << 10n;
const FLAG_FREQ = 1n << 10n;

/** The parts of struct perf_event_attr the toolkit sets. */
export interface PerfEventAttr {
  type: number;
  config: bigint | number;
  /** Sample period, or frequency in Hz when `freq` is set. */
  sample: bigint | number;
  freq?: boolean;
  sampleRaw?: boolean;
  /** kprobe/uprobe PMUs: a pointer to the function name or binary path. */
  config1?: bigint;
  /** kprobe/uprobe PMUs: the offset into the function or file. */
  config2?: bigint;
}

/** An open perf event. */
export class PerfEvent extends OwnedFd {}

/** Opens a perf event for `pid` (-1: all) on `cpu` (-1: any). */
export function perfEventOpen(attr: PerfEventAttr, pid: number, cpu: number): PerfEvent {
  const buf = new Uint8Array(ATTR_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, attr.type, true);
  v.setUint32(4, ATTR_SIZE, true);
  v.setBigUint64(8, BigInt(attr.config), true);
  v.setBigUint64(16, BigInt(attr.sample), true);
  v.setBigUint64(24, attr.sampleRaw ? PERF_SAMPLE_RAW : 0n, true);
  v.setBigUint64(40, attr.freq ? FLAG_FREQ : 0n, true);
  v.setUint32(48, 1, true); // wakeup_events
  v.setBigUint64(56, attr.config1 ?? 0n, true);
  v.setBigUint64(64, attr.config2 ?? 0n, true);
  const fd = Number(libc().syscall(SYS_PERF_EVENT_OPEN, buf, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) {
    const errno = lastErrno();
    throw new BpfError(
      `perf_event_open(type ${attr.type}, config ${attr.config}, cpu ${cpu})`,
      errno,
      errno === 2 && attr.type === PERF_TYPE.TRACEPOINT ? "no such tracepoint" : undefined,
    );
  }
  return new PerfEvent(fd, "perf event", `type ${attr.type} config ${attr.config}`);
}
