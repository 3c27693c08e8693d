/**
 * Programs as tools write them: attach to an event, read its fields by name,
 * and use the macros tools repeat (timestamps, log2 slots, histogram
 * increments, per-thread start times, PID filters).
 *
 * @example
 * ```ts
 * import { defineMap } from "./maps.ts";
 * import { r10 } from "./registers.ts";
 * const counts = defineMap({ name: "counts", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1 });
 * const p = tracepoint("sched", "sched_switch");
 * const key = p.stack(4);
 * p.store("u32", r10, key, 0).counterAdd(counts, key, 1).ret(0);
 * const program = p.build();
 * ```
 */
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import { type AttachTarget, type Label, ProgramBuilder } from "./builder.ts";
import { kernelLayouts, type Layouts, type TpBtfParam } from "./layouts.ts";
import type { MapDef } from "./maps.ts";
import type { HistMapDef } from "./hist.ts";
import { CTX, type Operand, r0, r1, r10, r2, r3, r4, Reg } from "./registers.ts";
import type { TracepointFormat } from "../tracefs/format.ts";

/** How a program's context is laid out. */
export type Context =
  | { kind: "tracepoint"; format: TracepointFormat }
  | { kind: "args"; event: string; params: TpBtfParam[]; btfTyped: boolean }
  | { kind: "none" };

/** A program attached to one event, with its context readable by field name. */
export class Probe extends ProgramBuilder {
  /** Tools get one from tracepoint(), tpBtf(), rawTracepoint() or uprobe() instead. */
  constructor(
    name: string,
    type: ProgTypeName,
    attach: AttachTarget,
    readonly context: Context,
    readonly layouts: Layouts,
    ctxSize?: number,
  ) {
    super(name, type, attach, ctxSize);
    this.mov(CTX, r1); // keep ctx in a callee-saved register
  }

  /** True when struct fields can be read directly (BTF-typed pointers). */
  get btfTyped(): boolean {
    return this.context.kind === "args" && this.context.btfTyped;
  }

  /**
   * dst = the event's field `name`: a tracepoint record field, or a tp_btf
   * argument (by name, e.g. "prev", "next", "p").
   */
  ctx(dst: Reg, name: string): this {
    const c = this.context;
    if (c.kind === "tracepoint") {
      const f = c.format.field(name);
      const size = ({ 1: "u8", 2: "u16", 4: "u32", 8: "u64" } as const)[f.size as 1 | 2 | 4 | 8];
      if (!size) {
        throw new Error(`field ${name} of ${c.format.name} is ${f.size} bytes, not a scalar`);
      }
      return this.load(dst, size, CTX, f.offset);
    }
    if (c.kind === "args") {
      const i = c.params.findIndex((p) => p.name === name);
      if (i < 0) {
        throw new Error(
          `${this.type} ${c.event} has no argument '${name}' (it has: ${
            c.params.map((p) => p.name).join(", ")
          })`,
        );
      }
      return this.load(dst, "u64", CTX, 8 * i);
    }
    throw new Error(`program ${this.name} has no named context fields`);
  }

  /** Whether the event has a field or argument of this name. */
  hasCtx(name: string): boolean {
    const c = this.context;
    if (c.kind === "tracepoint") return c.format.fields.some((f) => f.name === name);
    if (c.kind === "args") return c.params.some((p) => p.name === name);
    return false;
  }

  /**
   * dst = ptr->path for a kernel struct: `field(r1, r7, "task_struct", "tgid")`,
   * with "->" following pointers ("nsproxy->pid_ns_for_children->ns.inum").
   * BTF-typed programs read directly; others go through bpf_probe_read_kernel.
   */
  field(dst: Reg, ptr: Reg, struct: string, path: string): this {
    let base = ptr;
    let structName = struct;
    const hops = path.split("->");
    for (const [i, hop] of hops.entries()) {
      const f = this.layouts.structField(structName, hop);
      const last = i === hops.length - 1;
      const size = last ? f.size : 8;
      if (![1, 2, 4, 8].includes(size)) {
        throw new Error(`${structName}.${hop} is ${size} bytes: read it with probeRead`);
      }
      this.#readKernel(dst, base, f.offset, size as 1 | 2 | 4 | 8);
      base = dst;
      if (!last) {
        if (!f.isPointer || !f.pointee) {
          throw new Error(`${structName}.${hop} is not a struct pointer`);
        }
        structName = f.pointee;
      }
    }
    return this;
  }

  #readKernel(dst: Reg, base: Reg, off: number, size: 1 | 2 | 4 | 8): void {
    const name = ({ 1: "u8", 2: "u16", 4: "u32", 8: "u64" } as const)[size];
    if (this.btfTyped) {
      this.load(dst, name, base, off);
      return;
    }
    const tmp = this.stack(8);
    this.store("u64", r10, tmp, 0);
    this.mov(r3, base).add(r3, off).stackPtr(r1, tmp).mov(r2, size).call("probe_read_kernel");
    this.load(dst, name, r10, tmp);
  }

  /** dst = bpf_ktime_get_ns(). */
  ktime(dst: Reg): this {
    this.call("ktime_get_ns");
    return dst.n === 0 ? this : this.mov(dst, r0);
  }

  /**
   * Starts a timer: map[key at r10+keyOff] = bpf_ktime_get_ns(). The key is
   * whatever identifies the thing being timed (a TID, a request pointer).
   */
  startTimer(map: MapDef, keyOff: number): this {
    const ts = this.stack(8);
    this.ktime(r0).store("u64", r10, ts, r0);
    return this.update(map, keyOff, ts);
  }

  /**
   * dst = now - map[key at r10+keyOff]; jumps to `missing` when no timer was
   * started, and to `negative` (default: `missing`) when the clock went
   * backwards. `dst` must be r6-r9 (it lives across a helper call).
   */
  elapsed(dst: Reg, map: MapDef, keyOff: number, missing: Label, negative = missing): this {
    this.lookup(map, keyOff).jumpIf(r0, "==", 0, missing);
    this.load(dst, "u64", r0, 0).ktime(r0).sub(r0, dst).mov(dst, r0);
    return this.jumpIf(dst, "s<", 0, negative);
  }

  /** Returns from the program unless the current process (TGID) is `pid`. */
  filterCurrentTgid(pid: number): this {
    this.call("get_current_pid_tgid").rsh(r0, 32);
    return this.returnIf(r0, "!=", pid);
  }

  /** Returns from the program unless the current thread (TID) is `tid`. */
  filterCurrentTid(tid: number): this {
    this.call("get_current_pid_tgid").mov32(r0, r0); // the low 32 bits
    return this.returnIf(r0, "!=", tid);
  }

  /** r0 = bpf_map_lookup_elem(map, r10 + keyOff). */
  lookup(map: MapDef, keyOff: number): this {
    return this.loadMap(r1, map).stackPtr(r2, keyOff).call("map_lookup_elem");
  }

  /** bpf_map_update_elem(map, r10 + keyOff, r10 + valueOff, flags). */
  update(map: MapDef, keyOff: number, valueOff: number, flags = 0): this {
    return this.loadMap(r1, map).stackPtr(r2, keyOff).stackPtr(r3, valueOff).mov(r4, flags)
      .call("map_update_elem");
  }

  /** bpf_map_delete_elem(map, r10 + keyOff). */
  delete(map: MapDef, keyOff: number): this {
    return this.loadMap(r1, map).stackPtr(r2, keyOff).call("map_delete_elem");
  }

  /**
   * dst = floor(log2(v)) (0 for v = 0), like libbpf-tools' log2l(); clobbers
   * v and tmp. Six compare-and-shift steps, no loop.
   */
  log2(dst: Reg, v: Reg, tmp: Reg): this {
    this.mov(dst, 0);
    this.mov(tmp, v).rsh(tmp, 32);
    this.if(tmp, "!=", 0, () => this.mov(v, tmp).mov(dst, 32));
    for (const bits of [16, 8, 4, 2, 1]) {
      this.if(v, ">=", 2 ** bits, () => this.rsh(v, bits).add(dst, bits));
    }
    return this;
  }

  /** dst = min(dst, max). */
  clamp(dst: Reg, max: number): this {
    return this.if(dst, ">", max, () => this.mov(dst, max));
  }

  /**
   * Adds `by` to the u64 counter at key r10+keyOff of an array map. Per-CPU
   * arrays need no atomic (each CPU owns its copy); shared ones use lock add.
   */
  counterAdd(map: MapDef, keyOff: number, by: Operand, valueOff = 0): this {
    this.lookup(map, keyOff);
    return this.if(r0, "!=", 0, () => {
      const perCpu = map.type.startsWith("percpu");
      const inc = by instanceof Reg ? by : r1;
      if (!(by instanceof Reg)) this.mov(r1, by);
      if (perCpu) {
        this.load(r2, "u64", r0, valueOff).add(r2, inc).store("u64", r0, valueOff, r2);
      } else {
        this.atomicAdd("u64", r0, valueOff, inc);
      }
    });
  }

  /**
   * Counts one event in `slot` (a register, already clamped to the map's
   * slots) of the histogram at key r10+keyOff. Clobbers r0-r5 and `slot`.
   * For keyed maps, `zeroOff` is a stack area of the value's size used to
   * create the entry; `afterCreate` may fill the value's extra bytes (r0 holds
   * the value pointer, and must hold it again when it returns) — it runs on
   * every event whose entry has an empty first extra byte. A map declared
   * with `sum` also adds the u64 at r10+`sum` (the value, in the sum's unit)
   * to its running sum.
   */
  histAdd(
    map: HistMapDef,
    keyOff: number,
    slot: Reg,
    opts: {
      zeroOff?: number;
      fillExtra?: (value: Reg) => void;
      valueReg?: Reg;
      sum?: number;
    } = {},
  ): this {
    const done = this.label();
    if ((map.sumOffset === undefined) !== (opts.sum === undefined)) {
      throw new Error(`histAdd(${map.name}): a map with a sum needs the sum option, and only it`);
    }
    if (map.slotBytes === 8) {
      this.lookup(map, keyOff).jumpIf(r0, "==", 0, done);
      if (map.sumOffset !== undefined) {
        this.load(r1, "u64", r0, map.sumOffset).load(r2, "u64", r10, opts.sum!).add(r1, r2)
          .store("u64", r0, map.sumOffset, r1);
      }
      this.lsh(slot, 3).add(r0, slot).load(r1, "u64", r0, 0).add(r1, 1).store("u64", r0, 0, r1);
      return this.bind(done);
    }
    if (opts.zeroOff === undefined) throw new Error(`histAdd(${map.name}) needs zeroOff`);
    const value = opts.valueReg ?? r0;
    this.lookupOrInit(map, keyOff, opts.zeroOff).jumpIf(r0, "==", 0, done);
    if (map.sumOffset !== undefined) {
      this.load(r1, "u64", r10, opts.sum!).atomicAdd("u64", r0, map.sumOffset, r1);
    }
    if (value.n !== 0) this.mov(value, r0);
    if (opts.fillExtra && map.extraBytes > 0) {
      this.load(r1, "u8", value, map.slots * 4).if(r1, "==", 0, () => opts.fillExtra!(value));
    }
    this.lsh(slot, 2).add(value, slot).mov(r1, 1).atomicAdd("u32", value, 0, r1);
    return this.bind(done);
  }

  /**
   * r0 = pointer to the value at key r10+keyOff, creating it from the zeroed
   * stack area at r10+zeroOff when absent (hash maps). r0 may still be NULL
   * when the map is full; callers check.
   */
  lookupOrInit(map: MapDef, keyOff: number, zeroOff: number): this {
    this.lookup(map, keyOff);
    return this.if(r0, "==", 0, () => {
      this.zeroStack(zeroOff, map.valueSize);
      this.update(map, keyOff, zeroOff, 1 /* BPF_NOEXIST */);
      this.lookup(map, keyOff);
    });
  }
}

/** Options of {@link tracepoint}, {@link tpBtf} and {@link rawTracepoint}. */
export interface ProbeOptions {
  /** Program name (15 chars max in the kernel). */
  name?: string;
  /** Layouts (tests); default: the running kernel's. */
  layouts?: Layouts;
  /** The program keeps kernel pointers in maps on purpose (see BuiltProgram). */
  allowPointerLeaks?: boolean;
}

function withOptions(p: Probe, opts: ProbeOptions): Probe {
  p.allowPointerLeaks = opts.allowPointerLeaks ?? false;
  return p;
}

/**
 * A program on a tracefs tracepoint ("sched", "sched_switch"); `ctx()` reads
 * the record's fields by the names of its format file.
 *
 * @example A log2 histogram of block request sizes (bitesize)
 * ```ts
 * import { defineHistMap } from "./hist.ts";
 * import { tracepoint } from "./program.ts";
 * import { r10, r7, r8, r9 } from "./registers.ts";
 *
 * const sizes = defineHistMap({ name: "sizes", slots: 32, perCpu: true });
 * const p = tracepoint("block", "block_rq_issue");
 * const key = p.stack(4);
 * p.ctx(r7, "bytes").log2(r8, r7, r9).clamp(r8, 31);
 * p.store("u32", r10, key, 0).histAdd(sizes, key, r8).ret(0);
 * const program = p.build(); // for loadAndAttach()
 * ```
 */
export function tracepoint(category: string, event: string, opts: ProbeOptions = {}): Probe {
  const layouts = opts.layouts ?? kernelLayouts;
  const format = layouts.tracepoint(category, event);
  const last = format.fields.at(-1);
  const ctxSize = last ? last.offset + last.size : 8;
  return withOptions(
    new Probe(
      opts.name ?? event,
      "tracepoint",
      { kind: "tracepoint", category, name: event, id: format.id },
      { kind: "tracepoint", format },
      layouts,
      ctxSize,
    ),
    opts,
  );
}

/**
 * A program on a BTF-typed tracepoint: arguments by name, struct fields read
 * directly (no bpf_probe_read_kernel).
 *
 * @example Count the switches to one process
 * ```ts
 * import { defineMap } from "./maps.ts";
 * import { tpBtf } from "./program.ts";
 * import { r10, r7, r8 } from "./registers.ts";
 *
 * const switches = defineMap({
 *   name: "switches", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = tpBtf("sched_switch");
 * const key = p.stack(4);
 * p.ctx(r7, "next").field(r8, r7, "task_struct", "tgid").returnIf(r8, "!=", 1234);
 * p.store("u32", r10, key, 0).counterAdd(switches, key, 1).ret(0);
 * const program = p.build();
 * ```
 */
export function tpBtf(event: string, opts: ProbeOptions = {}): Probe {
  const layouts = opts.layouts ?? kernelLayouts;
  const target = layouts.tpBtf(event);
  return withOptions(
    new Probe(
      opts.name ?? event,
      "tp_btf",
      { kind: "tp_btf", name: event, btfId: target.typedefId },
      { kind: "args", event, params: target.params, btfTyped: true },
      layouts,
      8 * target.params.length,
    ),
    opts,
  );
}

/**
 * A program on a raw tracepoint: the same arguments as tp_btf (their names
 * still come from BTF when present), struct fields read with probe reads.
 */
export function rawTracepoint(event: string, opts: ProbeOptions = {}): Probe {
  const layouts = opts.layouts ?? kernelLayouts;
  const target = layouts.tpBtf(event);
  return withOptions(
    new Probe(
      opts.name ?? event,
      "raw_tracepoint",
      { kind: "raw_tracepoint", name: event },
      { kind: "args", event, params: target.params, btfTyped: false },
      layouts,
      8 * target.params.length,
    ),
    opts,
  );
}
