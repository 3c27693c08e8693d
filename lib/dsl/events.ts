/**
 * Sending event records to user space, with every drop counted.
 *
 * An event channel is a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8+),
 * or on older kernels a perf buffer (BPF_MAP_TYPE_PERF_EVENT_ARRAY) with a
 * per-CPU scratch record standing in for the reservation, the way
 * libbpf-tools' compat layer does it. Either way the channel carries a
 * per-CPU `lost` counter: whenever a reservation or an output fails (the
 * buffer is full), the program adds one, and user space reports it
 * ("Lost N events"), so an event is never dropped silently.
 *
 * The kind is chosen by the tool (lib/kernel/ringbuf.ts probes the kernel);
 * the same macros emit the right helper calls for both.
 *
 * @example
 * ```ts
 * import { defineEvents, reserve, submit } from "./events.ts";
 * import { tracepoint } from "./program.ts";
 * import { r0, r7, r8 } from "./registers.ts";
 * import { defineSchema } from "./schema.ts";
 *
 * const openEvent = defineSchema("open_event", { pid: "u32", flags: "u32" });
 * const channel = defineEvents({ kind: "ringbuf", recordSize: openEvent.size });
 * const p = tracepoint("syscalls", "sys_enter_openat");
 * p.call("get_current_pid_tgid").rsh(r0, 32).mov(r8, r0); // r8 = PID
 * const out = p.label();
 * reserve(p, channel, r7, out);          // r7 = record, or lost++ and goto out
 * openEvent.store(p, r7, "pid", r8);
 * p.ctx(r8, "flags");
 * openEvent.store(p, r7, "flags", r8);
 * submit(p, channel, r7);
 * p.bind(out).ret(0);
 * ```
 *
 * @module
 */
import type { EventBufferKind } from "../kernel/ringbuf.ts";
import type { Label } from "./builder.ts";
import { defineMap, type MapDef } from "./maps.ts";
import type { Probe } from "./program.ts";
import { CTX, type Operand, r0, r1, r10, r2, r3, r4, r5, type Reg } from "./registers.ts";

// One definition, shared with the reader (type-only: nothing of lib/kernel loads here).
export type { EventBufferKind };

/** A declared event channel: the buffer map, its lost counter, and (perf) the scratch record. */
export interface EventsDef {
  /** Which buffer the records travel through. */
  readonly kind: EventBufferKind;
  /** The ring buffer, or the perf_event_array with one perf buffer per CPU. */
  readonly events: MapDef;
  /** percpu_array[1] of u64: events dropped because the buffer was full. */
  readonly lost: MapDef;
  /**
   * percpu_array[1] holding one record while it is filled: for perf buffers
   * (their "reservation"), and for variable-length records ({@link scratch}).
   */
  readonly heap?: MapDef;
  /** Bytes one reserved record holds. */
  readonly recordSize: number;
}

/** Options of {@link defineEvents}. */
export interface EventsOptions {
  /** Ring buffer, or perf buffers where the kernel has none (see eventBufferKind). */
  kind: EventBufferKind;
  /** Bytes of a record reserved with {@link reserve} (the schema's size). */
  recordSize: number;
  /** Ring buffer size in bytes: a power of two, at least one page. Default 4 MiB. */
  ringBytes?: number;
  /** perf: entries of the perf_event_array (at least the number of possible CPUs). */
  cpus?: number;
  /** Prefix of the map names ("events" gives events, events_lost, events_heap). */
  name?: string;
  /**
   * Declare a per-CPU scratch record (implied for perf), so records can be
   * built with {@link scratch} and sent with {@link output} at their real
   * length: a ring buffer then holds several times more short records.
   */
  scratch?: boolean;
}

/** Default ring buffer size: a few ms of an open storm, seconds of an exec storm. */
export const DEFAULT_RING_BYTES = 4 << 20;
const DEFAULT_PERF_CPUS = 1024;
/** BPF_F_CURRENT_CPU as a 32-bit immediate; mov32 zero-extends it to 0xffffffff. */
const BPF_F_CURRENT_CPU32 = -1;
/** Largest record bpf_perf_event_output and a per-CPU array value can carry comfortably. */
const MAX_PERF_RECORD = 32 << 10;

/**
 * Declares an event channel's maps: the buffer, its lost counter and, when
 * needed, the scratch record. Tools pick `kind` with eventBufferKind()
 * (lib/kernel/ringbuf.ts), which asks the running kernel.
 *
 * @example
 * ```ts
 * import { defineEvents } from "./events.ts";
 * const channel = defineEvents({ kind: "perf", recordSize: 32, name: "execs" });
 * channel.events.type; // "perf_event_array", one perf buffer per CPU
 * channel.lost.name; // "execs_lost": where reserve() and output() count drops
 * ```
 */
export function defineEvents(opts: EventsOptions): EventsDef {
  const name = opts.name ?? "events";
  const lost = defineMap({
    name: `${name}_lost`.slice(0, 15),
    type: "percpu_array",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  if (!Number.isInteger(opts.recordSize) || opts.recordSize <= 0) {
    throw new Error(`event record size must be a positive integer, got ${opts.recordSize}`);
  }
  const heap = opts.kind === "perf" || opts.scratch
    ? defineMap({
      name: `${name}_heap`.slice(0, 15),
      type: "percpu_array",
      keySize: 4,
      valueSize: opts.recordSize,
      maxEntries: 1,
    })
    : undefined;
  if (opts.kind === "ringbuf") {
    const bytes = opts.ringBytes ?? DEFAULT_RING_BYTES;
    if (bytes < 4096 || (bytes & (bytes - 1)) !== 0) {
      throw new Error(`ring buffer size ${bytes} must be a power of two of at least 4096`);
    }
    if (opts.recordSize + 8 > bytes / 2) {
      throw new Error(`a ${opts.recordSize}-byte record does not fit a ${bytes}-byte ring buffer`);
    }
    const events = defineMap({
      name,
      type: "ringbuf",
      keySize: 0,
      valueSize: 0,
      maxEntries: bytes,
    });
    return Object.freeze({ kind: "ringbuf", events, lost, heap, recordSize: opts.recordSize });
  }
  if (opts.recordSize > MAX_PERF_RECORD) {
    throw new Error(`a ${opts.recordSize}-byte record is too large for a perf buffer`);
  }
  const events = defineMap({
    name,
    type: "perf_event_array",
    keySize: 4,
    valueSize: 4,
    maxEntries: opts.cpus ?? DEFAULT_PERF_CPUS,
  });
  return Object.freeze({ kind: "perf", events, lost, heap, recordSize: opts.recordSize });
}

/** Adds one to the channel's lost counter (on this CPU). Clobbers r0-r5. */
export function countLost(p: Probe, ev: EventsDef): void {
  const key = p.stack(4);
  p.store("u32", r10, key, 0).counterAdd(ev.lost, key, 1);
}

/**
 * `into` = a record of `recordSize` bytes to fill: bpf_ringbuf_reserve, or
 * (perf) the per-CPU scratch record. When none is available the event is
 * counted as lost and the program jumps to `bail`. A reserved ring buffer
 * record must reach {@link submit} or {@link discard} on every path (the
 * kernel verifier enforces it). Clobbers r0-r5; `into` should be r7-r9.
 */
export function reserve(p: Probe, ev: EventsDef, into: Reg, bail: Label): void {
  if (ev.kind === "ringbuf") {
    p.loadMap(r1, ev.events).mov(r2, ev.recordSize).mov(r3, 0).call("ringbuf_reserve");
  } else {
    lookupHeap(p, ev);
  }
  p.if(r0, "==", 0, () => {
    countLost(p, ev);
    p.goto(bail);
  });
  p.mov(into, r0);
}

/**
 * `into` = this CPU's scratch record (declared with `scratch: true`), to
 * fill and then send with {@link output} at its real length. Nothing to
 * release. Jumps to `bail` in the (impossible) case the lookup fails.
 * Clobbers r0-r5; `into` should be r7-r9.
 */
export function scratch(p: Probe, ev: EventsDef, into: Reg, bail: Label): void {
  if (!ev.heap) throw new Error(`event channel ${ev.events.name} has no scratch record`);
  lookupHeap(p, ev);
  p.jumpIf(r0, "==", 0, bail).mov(into, r0);
}

function lookupHeap(p: Probe, ev: EventsDef): void {
  const key = p.stack(4);
  p.store("u32", r10, key, 0).lookup(ev.heap!, key);
}

/** Sends a reserved record to user space; a perf buffer that is full counts it as lost. */
export function submit(p: Probe, ev: EventsDef, rec: Reg): void {
  if (ev.kind === "ringbuf") {
    p.mov(r1, rec).mov(r2, 0).call("ringbuf_submit");
    return;
  }
  perfOutput(p, ev, rec, ev.recordSize);
}

/** Drops a reserved record without sending it (a filter said no). */
export function discard(p: Probe, ev: EventsDef, rec: Reg): void {
  if (ev.kind === "ringbuf") p.mov(r1, rec).mov(r2, 0).call("ringbuf_discard");
}

/**
 * Copies `size` bytes at `data` (a map value or stack pointer) into the
 * channel as one record: bpf_ringbuf_output or bpf_perf_event_output. A
 * register size must be bounded (the verifier checks it against the memory
 * behind `data`). When the buffer is full the event is counted as lost.
 * Clobbers r0-r5; `data` and `size` must not be r1-r5.
 */
export function output(p: Probe, ev: EventsDef, data: Reg, size: Operand): void {
  if (ev.kind === "perf") {
    perfOutput(p, ev, data, size);
    return;
  }
  p.loadMap(r1, ev.events).mov(r2, data).mov(r3, size).mov(r4, 0).call("ringbuf_output");
  p.if(r0, "s<", 0, () => countLost(p, ev));
}

function perfOutput(p: Probe, ev: EventsDef, data: Reg, size: Operand): void {
  p.mov(r1, CTX).loadMap(r2, ev.events).mov32(r3, BPF_F_CURRENT_CPU32).mov(r4, data).mov(r5, size)
    .call("perf_event_output");
  p.if(r0, "s<", 0, () => countLost(p, ev));
}
