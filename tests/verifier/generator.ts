/**
 * A seeded generator of small BPF programs for differential testing. Each
 * program is a chain of snippets shaped like what our tools generate (context
 * reads, map lookups with NULL checks and bounded indexes, counters, stack
 * buffers for helpers, ring buffer records, bounded loops, branches), whose
 * parameters are drawn around the valid range: most choices are valid, some
 * are off by a little (one byte past a map value, a bound one too large, a
 * missing NULL check, a loop that never ends...). Then, sometimes, one
 * instruction field is nudged.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import type { MapInfo } from "../../lib/verifier/mod.ts";
import { assemble } from "./asm.ts";
import type { Case } from "./harness.ts";

/** A small fast PRNG (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** Usually `good`, sometimes a nearby value. */
  near(good: number, p = 0.15, spread = 2): number {
    if (!this.chance(p)) return good;
    let d = 0;
    while (d === 0) d = this.int(-spread, spread);
    return good + d;
  }
}

/** The maps every generated program may use (by number). */
export const GEN_MAPS: MapInfo[] = [
  { type: "hash", keySize: 8, valueSize: 16, maxEntries: 64 },
  { type: "array", keySize: 4, valueSize: 64, maxEntries: 4 },
  { type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1 },
  { type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 },
  { type: "perf_event_array", keySize: 4, valueSize: 4, maxEntries: 2 },
  { type: "stack_trace", keySize: 4, valueSize: 1016, maxEntries: 16 },
  { type: "lru_hash", keySize: 4, valueSize: 24, maxEntries: 64 },
  { type: "array", keySize: 4, valueSize: 32, maxEntries: 1 },
  { type: "array", keySize: 4, valueSize: 16, maxEntries: 2, flags: 0x80 }, // BPF_F_RDONLY_PROG
  { type: "hash", keySize: 4, valueSize: 16, maxEntries: 8, flags: 0x100 }, // BPF_F_WRONLY_PROG
];

/** A memory offset as the assembler wants it: "+8", "-16". */
function at(off: number): string {
  return off < 0 ? `${off}` : `+${off}`;
}

const HASH = 0, ARRAY = 1, PERCPU = 2, RINGBUF = 3, PERF = 4, STACKS = 5, LRU = 6, GLOBALS = 7;
const RDONLY = 8, WRONLY = 9;

/** tp_btf targets: name, offsets of task_struct pointer args, offsets of number args. */
const TP_BTF: [string, number[], number[]][] = [
  ["sched_switch", [8, 16], [0, 24]],
  ["sched_switch", [8, 16], [0, 24]],
  ["sched_wakeup", [0], []],
  ["sched_pi_setprio", [0, 8], []], // pi_task (8) may be NULL
  ["sched_process_exec", [0], [8]],
];

const TYPES: ProgTypeName[] = [
  "tracepoint",
  "tracepoint",
  "tracepoint",
  "raw_tracepoint",
  "kprobe",
  "perf_event",
  "tp_btf",
  "socket_filter",
  "socket_filter",
];

/** Fields of task_struct (sched_switch's prev/next) worth reading, offsets from vmlinux. */
export interface TaskFields {
  /** [offset, size] of scalar fields. */
  scalars: [number, number][];
  /** Offsets of pointers to structs (real_parent, group_leader...). */
  pointers: number[];
  /** sizeof(struct task_struct). */
  size: number;
}

class Gen {
  lines: string[] = [];
  label = 0;
  /** Stack slots (fp offsets, 8-byte aligned) known written. */
  written = new Set<number>();
  /** Subprogram bodies, placed after the main program. */
  subs: string[] = [];
  /** Scalar registers available to use (callee-saved, so they survive calls). */
  scalars: string[] = [];
  /** tp_btf: the tracepoint, and the context offsets of its task pointers and numbers. */
  readonly tp: string;
  readonly taskArgs: number[];
  readonly numberArgs: number[];
  constructor(
    readonly r: Rng,
    readonly type: ProgTypeName,
    readonly task: TaskFields | undefined,
  ) {
    const [tp, taskArgs, numberArgs] = r.pick(TP_BTF);
    this.tp = tp;
    this.taskArgs = taskArgs;
    this.numberArgs = numberArgs;
  }

  emit(...l: string[]) {
    this.lines.push(...l);
  }
  fresh(): string {
    return `L${this.label++}`;
  }
  /** A callee-saved register for a new scalar (r7-r9), forgetting its old value. */
  scalarReg(): string {
    const reg = this.r.pick(["r7", "r8", "r9"]);
    this.scalars = this.scalars.filter((x) => x !== reg);
    return reg;
  }
  someScalar(): string | undefined {
    return this.scalars.length ? this.r.pick(this.scalars) : undefined;
  }
  /** An aligned stack slot, sometimes out of the frame or misaligned. */
  slot(size: number): number {
    let off = -8 * this.r.int(1, 24);
    if (this.r.chance(0.03)) off = this.r.pick([0, 8, -512 - 8, -520]);
    if (this.r.chance(0.03)) off += this.r.pick([1, 2, 4]);
    return off + (8 - size) * (this.r.chance(0.3) ? 1 : 0);
  }
  /** Writes `bytes` bytes (8-byte chunks) below `base` with zero or a value. */
  fill(base: number, bytes: number) {
    for (let o = 0; o < bytes; o += 8) {
      if (this.r.chance(0.005)) continue; // forget one chunk
      const v = this.someScalar();
      if (v && this.r.chance(0.3)) this.emit(`*(u64 *)(r10 ${at(base + o)}) = ${v}`);
      else this.emit(`*(u64 *)(r10 ${at(base + o)}) = 0`);
      this.written.add(base + o);
    }
  }

  ctxRead() {
    const reg = this.scalarReg();
    const size = this.r.pick([1, 2, 4, 8, 8]);
    let off: number;
    switch (this.type) {
      case "tracepoint":
        off = this.r.int(1, 6) * 8;
        if (this.r.chance(0.05)) off = this.r.pick([0, 4]);
        break;
      case "raw_tracepoint":
        off = this.r.int(0, 3) * 8;
        if (this.r.chance(0.05)) off = 96;
        break;
      case "kprobe":
        off = this.r.int(0, 20) * 8;
        if (this.r.chance(0.05)) off = 168;
        break;
      case "perf_event":
        off = this.r.chance(0.8) ? this.r.int(0, 20) * 8 : this.r.pick([168, 176, 184]);
        break;
      case "socket_filter":
        off = this.r.int(0, 17) * 4;
        if (this.r.chance(0.1)) off = this.r.pick([76, 80, 88, 140]);
        break;
      case "tp_btf":
        off = this.numberArgs.length ? this.r.pick(this.numberArgs) : 40;
        if (this.r.chance(0.05)) off = 32;
        break;
      default:
        off = 8;
    }
    const sz = this.type === "socket_filter" ? Math.min(size, 4) : size;
    if (this.r.chance(0.05)) off += 2;
    this.emit(`${reg} = *(u${sz * 8} *)(r6 ${at(off - (off % sz))})`);
    this.scalars.push(reg);
  }

  helperScalar() {
    const h = this.r.pick([
      "bpf_ktime_get_ns",
      "bpf_get_prandom_u32",
      "bpf_get_current_pid_tgid",
      "bpf_get_smp_processor_id",
    ]);
    this.emit(`call ${h}`);
    const reg = this.scalarReg();
    this.emit(`${reg} = r0`);
    if (this.r.chance(0.3)) this.emit(`${reg} >>= ${this.r.pick([32, 16, 3])}`);
    this.scalars.push(reg);
    if (this.r.chance(0.04)) this.emit("r0 = r1"); // R1 is gone after a call
  }

  alu() {
    const d = this.someScalar();
    if (!d) return this.helperScalar();
    const w = this.r.chance(0.2);
    const ops = ["+=", "-=", "*=", "&=", "|=", "^=", "<<=", ">>=", "s>>=", "/=", "%="];
    const o = this.r.pick(ops);
    const dst = w ? d.replace("r", "w") : d;
    const s = this.someScalar();
    let rhs: string;
    if (o.includes("<<") || o.includes(">>")) rhs = String(this.r.int(0, w ? 31 : 63));
    else if (s && this.r.chance(0.3)) rhs = w ? s.replace("r", "w") : s;
    else rhs = String(this.r.pick([1, 3, 7, 0xff, 63, 1000, -1, 0x7fffffff]));
    if ((o === "/=" || o === "%=") && rhs === "0") rhs = "3";
    this.emit(`${dst} ${o} ${rhs}`);
  }

  /** key on the stack, lookup, NULL check, use the value. */
  mapUse() {
    const m = this.r.pick([HASH, ARRAY, PERCPU, LRU, HASH, ARRAY]);
    const info = GEN_MAPS[m];
    const keyOff = -8 * this.r.int(1, 8);
    if (info.keySize === 4) {
      const idx = this.r.chance(0.85) ? this.r.int(0, info.maxEntries - 1) : this.r.int(0, 1000);
      if (this.r.chance(0.99)) {
        this.emit(`*(u32 *)(r10 ${at(keyOff)}) = ${idx}`);
      }
      this.written.add(keyOff);
    } else {
      this.fill(keyOff, 8);
    }
    const keyPtr = this.r.chance(0.02) ? this.r.pick([0, -516]) : keyOff;
    this.emit("r2 = r10", `r2 += ${keyPtr}`, `r1 = map[${m}] ll`);
    this.emit("call bpf_map_lookup_elem");
    const out = this.fresh();
    const checked = this.r.chance(0.93);
    if (checked) {
      this.emit(this.r.chance(0.95) ? `if r0 == 0 goto ${out}` : `if r0 != 0 goto ${out}`);
    }
    const vs = info.valueSize;
    const uses = this.r.int(1, 3);
    for (let i = 0; i < uses; i++) {
      const kind = this.r.int(0, 5);
      const size = this.r.pick([1, 2, 4, 8]);
      const off = this.r.near(this.r.int(0, Math.max(0, vs / size - 1)) * size, 0.08, size);
      if (kind === 0) this.emit(`r1 = 1`, `lock *(u64 *)(r0 ${at(this.r.near(0, 0.05, 4))}) += r1`);
      else if (kind === 1) this.emit(`r1 = *(u${size * 8} *)(r0 ${at(off)})`);
      else if (kind === 2) {
        const v = this.someScalar() ?? "r1";
        if (v === "r1") this.emit("r1 = 5");
        this.emit(`*(u${size * 8} *)(r0 ${at(off)}) = ${v}`);
      } else if (kind === 3) {
        // Variable index into the value, bounded by a mask or a compare.
        const s = this.someScalar();
        if (!s) continue;
        this.emit("r2 = r0", `r3 = ${s}`);
        const limit = vs - size;
        if (this.r.chance(0.5)) {
          const mask = [7, 15, 31, 63, 127][this.r.int(0, 4)];
          this.emit(`r3 &= ${mask}`);
        } else {
          const skip = this.fresh();
          const bound = this.r.near(limit, 0.25, 2);
          this.emit(
            this.r.chance(0.8) ? `if r3 > ${bound} goto ${skip}` : `if r3 s> ${bound} goto ${skip}`,
          );
          this.emit("r2 += r3", `r1 = *(u${size * 8} *)(r2 +0)`, `${skip}:`);
          continue;
        }
        this.emit("r2 += r3", `r1 = *(u${size * 8} *)(r2 +0)`);
      } else if (kind === 4) {
        // A pointer kept for later: spilled and reloaded.
        this.emit("*(u64 *)(r10 -200) = r0", "r0 = *(u64 *)(r10 -200)");
        if (this.r.chance(0.05)) this.emit("r1 = *(u32 *)(r10 -200)");
      } else {
        if (this.r.chance(0.01)) this.emit("*(u64 *)(r0 +0) = r10");
        else this.emit(`*(u${size * 8} *)(r0 ${at(off)}) = 7`);
      }
    }
    this.emit(`${out}:`);
    if (!checked && this.r.chance(0.5)) this.emit("r0 = 0");
  }

  mapUpdate() {
    const m = this.r.pick([HASH, LRU, ARRAY]);
    const info = GEN_MAPS[m];
    const keyOff = -8 * this.r.int(1, 4);
    const valOff = keyOff - 8 * Math.ceil(info.valueSize / 8) - 8;
    if (info.keySize === 4) {
      this.emit(`*(u32 *)(r10 ${at(keyOff)}) = ${this.r.int(0, 3)}`);
    } else this.fill(keyOff, 8);
    this.fill(valOff, info.valueSize);
    this.emit(
      `r1 = map[${m}] ll`,
      "r2 = r10",
      `r2 += ${keyOff}`,
      "r3 = r10",
      `r3 += ${this.r.chance(0.03) ? this.r.pick([-8, -520]) : valOff}`,
      `r4 = ${this.r.pick([0, 0, 1, 2])}`,
      "call bpf_map_update_elem",
    );
  }

  loop() {
    const i = this.scalarReg();
    const n = this.r.pick([4, 8, 16, 32, 64]);
    const step = this.r.chance(0.95) ? this.r.pick([1, 1, 2, 3]) : 0;
    const l = this.fresh();
    const body = this.r.int(0, 2);
    const out = this.fresh();
    const mayGoto = this.r.chance(0.3);
    this.emit(`${i} = 0`, `${l}:`);
    if (mayGoto) this.emit(`may_goto ${out}`);
    if (body === 1) {
      this.emit(
        "r2 = r10",
        "r2 += -128",
        `r3 = ${i}`,
        "r3 &= 63",
        "r2 += r3",
        "*(u8 *)(r2 +0) = 1",
      );
    } else if (body === 2) {
      this.emit("call bpf_get_prandom_u32");
    }
    this.emit(`${i} += ${step}`);
    const cmp = this.r.chance(0.9) ? "<" : this.r.pick([">", "!=", "s<"]);
    this.emit(`if ${i} ${cmp} ${n} goto ${l}`, `${out}:`);
    // Leaving by may_goto, the counter is anywhere in the loop's range.
    this.scalars.push(i);
  }

  /** Two bounded loops, one inside the other, writing a 2-D stack buffer. */
  nestedLoops() {
    const i = this.scalarReg();
    let j = this.scalarReg();
    if (j === i) j = i === "r8" ? "r9" : "r8";
    const outer = this.fresh(), inner = this.fresh();
    const n = this.r.pick([2, 4, 8]), m = this.r.pick([2, 4, 8]);
    this.emit(`${i} = 0`, `${outer}:`, `${j} = 0`, `${inner}:`);
    this.emit(
      "r2 = r10",
      "r2 += -64",
      `r3 = ${i}`,
      "r3 <<= 3",
      `r3 += ${j}`,
      `r3 &= ${this.r.chance(0.95) ? 63 : 127}`,
      "r2 += r3",
      "*(u8 *)(r2 +0) = 2",
    );
    this.emit(`${j} += 1`, `if ${j} < ${m} goto ${inner}`);
    this.emit(`${i} += ${this.r.chance(0.97) ? 1 : 0}`, `if ${i} < ${n} goto ${outer}`);
    this.scalars = this.scalars.filter((x) => x !== i && x !== j);
    this.scalars.push(i);
  }

  diamond() {
    const s = this.someScalar() ?? "r6";
    const d = this.scalarReg();
    const els = this.fresh(), end = this.fresh();
    const w = this.r.chance(0.2) && s !== "r6";
    const cmp = this.r.pick(["==", "!=", ">", ">=", "<", "<=", "s>", "s<", "&", "&"]);
    this.emit(
      `if ${w ? s.replace("r", "w") : s} ${cmp} ${this.r.pick([0, 1, 10, 255, -1])} goto ${els}`,
    );
    const jump = this.r.chance(0.3) ? "gotol" : "goto";
    this.emit(`${d} = ${this.r.int(0, 20)}`, `${jump} ${end}`, `${els}:`);
    if (this.r.chance(0.97)) this.emit(`${d} = ${this.r.int(0, 20)}`);
    this.emit(`${end}:`);
    this.scalars.push(d);
  }

  stackRoundTrip() {
    const size = this.r.pick([1, 2, 4, 8]);
    const off = this.slot(size);
    const v = this.someScalar();
    if (this.r.chance(0.98)) {
      this.emit(
        v && this.r.chance(0.6)
          ? `*(u${size * 8} *)(r10 ${at(off)}) = ${v}`
          : `*(u${size * 8} *)(r10 ${at(off)}) = 3`,
      );
    }
    const reg = this.scalarReg();
    const rsize = this.r.chance(0.98) ? size : this.r.pick([1, 2, 4, 8]);
    this.emit(`${reg} = *(u${rsize * 8} *)(r10 ${at(off - (off % rsize))})`);
    this.scalars.push(reg);
  }

  probeRead() {
    const n = this.r.pick([8, 16, 32]);
    const buf = -8 * this.r.int(3, 20);
    const size = this.r.near(n, 0.1, 8);
    const src = this.someScalar() ?? "r6";
    this.emit("r1 = r10", `r1 += ${buf}`);
    const constSize = this.r.chance(0.85);
    if (constSize) this.emit(`r2 = ${Math.max(size, 0)}`);
    else {
      const s = this.someScalar() ?? "r6";
      this.emit(`r2 = ${s}`);
      if (this.r.chance(0.7)) this.emit(`r2 &= ${this.r.pick([7, 15, 31, 255])}`);
    }
    this.emit(`r3 = ${src}`);
    this.emit(
      `call ${
        this.r.pick(["bpf_probe_read_kernel", "bpf_probe_read_user", "bpf_probe_read_kernel_str"])
      }`,
    );
    for (let o = 0; o < n; o += 8) this.written.add(buf + o);
    if (constSize && size >= 8 && this.r.chance(0.5)) {
      const reg = this.scalarReg();
      this.emit(`${reg} = *(u64 *)(r10 ${at(buf)})`);
      this.scalars.push(reg);
    }
  }

  comm() {
    const buf = -8 * this.r.int(2, 30);
    this.emit(
      "r1 = r10",
      `r1 += ${buf}`,
      `r2 = ${this.r.near(16, 0.1, 8)}`,
      "call bpf_get_current_comm",
    );
  }

  ringbuf() {
    const size = this.r.pick([8, 16, 24]);
    const out = this.fresh();
    this.emit(`r1 = map[${RINGBUF}] ll`, `r2 = ${size}`, "r3 = 0", "call bpf_ringbuf_reserve");
    if (this.r.chance(0.95)) this.emit(`if r0 == 0 goto ${out}`);
    this.emit("r1 = r0");
    const v = this.someScalar();
    for (let o = 0; o < size; o += 8) {
      if (v) this.emit(`*(u64 *)(r1 ${at(this.r.near(o, 0.04, 8))}) = ${v}`);
      else this.emit(`*(u64 *)(r1 ${at(o)}) = 1`);
    }
    const skip = this.fresh();
    if (this.r.chance(0.05) && v) this.emit(`if ${v} > 5 goto ${skip}`);
    this.emit(
      "r2 = 0",
      this.r.chance(0.8) ? "call bpf_ringbuf_submit" : "call bpf_ringbuf_discard",
    );
    this.emit(`${skip}:`, `${out}:`);
  }

  perfOutput() {
    const n = this.r.pick([8, 16, 24]);
    const buf = -8 * this.r.int(4, 12);
    this.fill(buf, n);
    this.emit(
      "r1 = r6",
      `r2 = map[${PERF}] ll`,
      "r3 = 0xffffffff ll",
      "r4 = r10",
      `r4 += ${buf}`,
      `r5 = ${this.r.chance(0.03) ? 600 : this.r.chance(0.03) ? 0 : n}`,
      "call bpf_perf_event_output",
    );
  }

  stackId() {
    this.emit(
      "r1 = r6",
      `r2 = map[${this.r.chance(0.95) ? STACKS : HASH}] ll`,
      `r3 = ${this.r.pick([0, 256, 512])}`,
    );
    this.emit("call bpf_get_stackid");
    const reg = this.scalarReg();
    this.emit(`${reg} = r0`);
    this.scalars.push(reg);
  }

  taskRead() {
    const t = this.task;
    if (!t || this.type !== "tp_btf") return this.ctxRead();
    this.emit(`r2 = *(u64 *)(r6 ${at(this.r.pick(this.taskArgs))})`);
    if (this.r.chance(0.3)) {
      this.emit(`r2 = *(u64 *)(r2 ${at(this.r.pick(t.pointers))})`);
    }
    const [off, size] = this.r.chance(0.92) ? this.r.pick(t.scalars) : [this.r.int(0, t.size), 4];
    const reg = this.scalarReg();
    this.emit(`${reg} = *(u${size * 8} *)(r2 ${at(this.r.near(off, 0.05, 4))})`);
    this.scalars.push(reg);
  }

  /** Atomic read-modify-write on a map value or the stack, with fetches. */
  atomics() {
    const onStack = this.r.chance(0.3);
    const out = this.fresh();
    if (onStack) {
      const off = -8 * this.r.int(1, 10);
      if (this.r.chance(0.99)) this.emit(`*(u64 *)(r10 ${at(off)}) = 0`);
      this.emit("r2 = r10", `r2 += ${off}`);
    } else {
      this.emit(
        `*(u32 *)(r10 -4) = 0`,
        "r2 = r10",
        "r2 += -4",
        `r1 = map[${ARRAY}] ll`,
        "call bpf_map_lookup_elem",
      );
      if (this.r.chance(0.95)) this.emit(`if r0 == 0 goto ${out}`);
      this.emit("r2 = r0");
    }
    const v = this.someScalar() ?? "r1";
    if (v === "r1") this.emit("r1 = 3");
    const size = this.r.chance(0.8) ? 64 : 32;
    const aoff = this.r.chance(0.95) ? 0 : this.r.pick([4, 2, 64]);
    const k = this.r.int(0, 4);
    if (k === 0) {
      this.emit(`.raw 0x${(size === 64 ? 0xdb : 0xc3).toString(16)} 2 ${v.slice(1)} ${aoff} 1`); // fetch add
    } else if (k === 1) {
      this.emit(`.raw 0x${(size === 64 ? 0xdb : 0xc3).toString(16)} 2 ${v.slice(1)} ${aoff} 0xe1`); // xchg
    } else if (k === 2) {
      this.emit(
        "r0 = 0",
        `.raw 0x${(size === 64 ? 0xdb : 0xc3).toString(16)} 2 ${v.slice(1)} ${aoff} 0xf1`,
      ); // cmpxchg
    } else if (k === 3) {
      this.emit(`.raw 0x${(size === 64 ? 0xdb : 0xc3).toString(16)} 2 ${v.slice(1)} ${aoff} 0x51`); // fetch and
    } else this.emit(`lock *(u${size} *)(r2 +${aoff}) ^= ${v}`);
    this.emit(`${out}:`);
    if (k !== 4 && k !== 2) this.scalars = this.scalars.filter((x) => x !== v);
  }

  /** Sign-extending loads and moves, byte swaps, signed division. */
  signedOps() {
    const d = this.scalarReg();
    const w = d.replace("r", "w");
    const k = this.r.int(0, 8);
    if (k === 0) {
      const off = -8 * this.r.int(1, 8);
      this.emit(`*(u64 *)(r10 ${at(off)}) = ${this.someScalar() ?? "r6"}`.replace("= r6", "= 5"));
      const size = this.r.pick([1, 2, 4]);
      this.emit(`${d} = *(s${size * 8} *)(r10 ${at(off + size * this.r.int(0, 8 / size - 1))})`);
    } else if (k === 1) {
      const s = this.someScalar() ?? "r0";
      if (s === "r0") this.emit("call bpf_get_prandom_u32");
      if (this.r.chance(0.6)) this.emit(`${d} = (s${this.r.pick([8, 16, 32])})${s}`);
      else this.emit(`${w} = (s${this.r.pick([8, 16])})${s.replace("r", "w")}`);
    } else if (k === 2) {
      const s = this.someScalar();
      this.emit(s && this.r.chance(0.5) ? `${d} = ${s}` : `${d} = ${this.r.int(-100, 100)}`);
      this.emit(`${d} = bswap${this.r.pick([16, 32, 64])} ${d}`);
    } else if (k === 3) {
      this.emit(`${d} = ${this.r.int(-100, 100)}`);
      this.emit(`${d} = ${this.r.pick(["be", "le"])}${this.r.pick([16, 32, 64])} ${d}`);
    } else if (k === 4 || k === 5) {
      // Signed division and modulo, 64 or 32 bits, by a constant or a register.
      const s = this.someScalar();
      const wide = k === 4;
      const dst = wide ? d : w;
      this.emit(s && this.r.chance(0.5) ? `${d} = ${s}` : `${d} = ${this.r.int(-1000, 1000)}`);
      const o = this.r.pick(["s/=", "s%="]);
      if (this.r.chance(0.6)) this.emit(`${dst} ${o} ${this.r.pick([3, -7, 100, -1])}`);
      else {
        const t = this.someScalar() ?? "r6";
        if (t === "r6" || t === d) this.emit(`${d} = -3`);
        else this.emit(`${dst} ${o} ${wide ? t : t.replace("r", "w")}`);
      }
    } else if (k === 6) {
      // A sign-extending load from a map value.
      const out = this.fresh();
      this.emit(
        `*(u32 *)(r10 -4) = ${this.r.int(0, 3)}`,
        "r2 = r10",
        "r2 += -4",
        `r1 = map[${ARRAY}] ll`,
        "call bpf_map_lookup_elem",
        `if r0 == 0 goto ${out}`,
      );
      const size = this.r.pick([1, 2, 4]);
      this.emit(`r1 = *(s${size * 8} *)(r0 ${at(this.r.near(size * this.r.int(0, 15), 0.05))})`);
      this.emit(`${out}:`, `${d} = 1`);
    } else {
      // A sign-extended index must be bounded before use.
      const out = this.fresh();
      this.emit(
        `*(u32 *)(r10 -4) = 0`,
        "r2 = r10",
        "r2 += -4",
        `r1 = map[${ARRAY}] ll`,
        "call bpf_map_lookup_elem",
      );
      this.emit(`if r0 == 0 goto ${out}`, "r1 = *(u8 *)(r0 +0)", "r1 = (s8)r1");
      if (this.r.chance(0.7)) this.emit(`if r1 s< 0 goto ${out}`);
      this.emit("r0 += r1", "r1 = *(u8 *)(r0 +0)", `${out}:`);
      this.emit(`${d} = 0`);
    }
    this.scalars.push(d);
  }

  /** Store-release and load-acquire on the stack or a map value. */
  acquireRelease() {
    const d = this.scalarReg();
    const size = this.r.pick([1, 2, 4, 8]);
    const code = (0xc3 | [0, 0x10, 0x08, 0, 0, 0, 0, 0, 0x18][size]) & 0xff;
    const v = this.someScalar() ?? d;
    if (v === d) this.emit(`${d} = 7`);
    const out = this.fresh();
    let base = "r10", off = -8 * this.r.int(1, 8);
    if (this.r.chance(0.4)) {
      this.emit(
        `*(u32 *)(r10 -4) = 1`,
        "r2 = r10",
        "r2 += -4",
        `r1 = map[${ARRAY}] ll`,
        "call bpf_map_lookup_elem",
        `if r0 == 0 goto ${out}`,
      );
      base = "r0";
      off = this.r.near(size * this.r.int(0, 64 / size - 1), 0.05);
    } else if (this.r.chance(0.03)) base = "r6"; // the context: refused
    const b = base.slice(1), s = v.slice(1);
    if (base === "r10" || this.r.chance(0.7)) {
      this.emit(`.raw 0x${code.toString(16)} ${b} ${s} ${off} 0x110`);
    }
    this.emit(`.raw 0x${code.toString(16)} ${d.slice(1)} ${b} ${off} 0x100`, `${out}:`);
    this.emit(`${d} = 2`);
    this.scalars.push(d);
  }

  /** Maps programs may only read (or only write): loads, stores, atomics, updates. */
  flaggedMap() {
    const m = this.r.pick([RDONLY, WRONLY]);
    const out = this.fresh();
    this.emit(`*(u32 *)(r10 -4) = ${this.r.int(0, 1)}`, "r2 = r10", "r2 += -4");
    if (this.r.chance(0.15)) {
      // Updating is a write: refused for BPF_F_RDONLY_PROG maps.
      this.fill(-24, 16);
      this.emit(`r1 = map[${m}] ll`, "r3 = r10", "r3 += -24", "r4 = 0", "call bpf_map_update_elem");
      return;
    }
    this.emit(`r1 = map[${m}] ll`, "call bpf_map_lookup_elem", `if r0 == 0 goto ${out}`);
    const write = this.r.chance(m === WRONLY ? 0.85 : 0.15);
    const off = 8 * this.r.int(0, 1);
    if (this.r.chance(0.1)) this.emit("r1 = 1", `lock *(u64 *)(r0 +${off}) += r1`);
    else if (write) this.emit(`*(u64 *)(r0 +${off}) = 3`);
    else this.emit(`r1 = *(u64 *)(r0 +${off})`);
    this.emit(`${out}:`);
  }

  /** Stack accesses at a bounded variable offset. */
  varStack() {
    const s = this.someScalar();
    if (!s) return this.helperScalar();
    const base = -8 * this.r.int(8, 12);
    for (let o = 0; o < 64; o += 8) this.emit(`*(u64 *)(r10 ${at(base + o)}) = 0`);
    this.emit(
      "r2 = r10",
      `r2 += ${base}`,
      `r3 = ${s}`,
      `r3 &= ${this.r.pick([7, 15, 24, 31, 63])}`,
      "r2 += r3",
    );
    if (this.r.chance(0.5)) this.emit("*(u8 *)(r2 +0) = 1");
    else {
      const reg = this.scalarReg();
      this.emit(`${reg} = *(u8 *)(r2 +0)`);
      this.scalars.push(reg);
    }
  }

  /** 32-bit compares that bound an index. */
  jmp32Index() {
    const s = this.someScalar();
    if (!s) return this.helperScalar();
    const out = this.fresh();
    this.emit(
      `*(u32 *)(r10 -4) = 1`,
      "r2 = r10",
      "r2 += -4",
      `r1 = map[${ARRAY}] ll`,
      "call bpf_map_lookup_elem",
    );
    this.emit(`if r0 == 0 goto ${out}`, `r3 = ${s}`);
    if (this.r.chance(0.7)) this.emit(`r3 &= ${this.r.pick([0xff, 0xffff, 0xffffffff])}`);
    this.emit(`if w3 ${this.r.pick([">", ">=", "s>"])} ${this.r.near(60, 0.2, 4)} goto ${out}`);
    this.emit("r0 += r3", "r1 = *(u8 *)(r0 +0)", `${out}:`);
  }

  /** A direct value load of a one-entry array map (globals). */
  globals() {
    const off = this.r.chance(0.9) ? this.r.int(0, 3) * 8 : this.r.pick([32, 28]);
    this.emit(`r2 = mapval[${GLOBALS}]+${off}`, `r1 = *(u64 *)(r2 +${this.r.chance(0.9) ? 0 : 8})`);
    const reg = this.scalarReg();
    this.emit(`${reg} = r1`);
    this.scalars.push(reg);
  }

  /** Legacy packet loads (socket filters only). */
  packet() {
    this.emit("r6 = r1");
    for (let n = this.r.int(1, 3); n > 0; n--) {
      const size = this.r.pick([8, 16, 32]);
      if (this.r.chance(0.5)) this.emit(`r0 = *(u${size} *)skb[${this.r.int(0, 64)}]`);
      else {
        const s = this.someScalar() ?? "r7";
        if (s === "r7") this.emit("r7 = 4");
        this.emit(`r0 = *(u${size} *)skb[${s} + ${this.r.int(0, 16)}]`);
      }
    }
    const reg = this.scalarReg();
    this.emit(`${reg} = r0`);
    this.scalars.push(reg);
    if (this.r.chance(0.05)) this.emit("r0 = r2");
  }

  /** The current task as a typed pointer, passed to a helper that wants one. */
  taskStack() {
    this.emit("call bpf_get_current_task_btf", "r1 = r0");
    if (this.r.chance(0.03)) this.emit(`r1 = *(u64 *)(r1 +${this.task?.pointers[0] ?? 8})`);
    const buf = -8 * this.r.int(8, 16);
    this.emit("r2 = r10", `r2 += ${buf}`, `r3 = ${this.r.near(64, 0.1, 8)}`, "r4 = 0");
    this.emit("call bpf_get_task_stack");
  }

  /** A bpf-to-bpf call: arguments in R1-R5, a number back in R0, the body after main's exit. */
  subprogram() {
    const name = `sub${this.label++}`;
    const arg = this.someScalar();
    this.emit(arg ? `r1 = ${arg}` : `r1 = ${this.r.int(0, 100)}`);
    const buf = -8 * this.r.int(1, 20);
    const passBuf = this.r.chance(0.3);
    if (passBuf) {
      // A buffer in the caller's frame, which the callee fills (or reads).
      if (this.r.chance(0.5)) this.fill(buf, 8);
      this.emit("r2 = r10", `r2 += ${buf}`);
    } else if (this.r.chance(0.3)) this.emit("r2 = r6"); // the context as a second argument
    this.emit(`call @${name}`);
    if (this.r.chance(0.02)) this.emit("r0 = r1"); // arguments are gone after the call
    const reg = this.scalarReg();
    this.emit(`${reg} = r0`);
    this.scalars.push(reg);
    const body: string[] = [`${name}:`];
    const out = `${name}_out`;
    const k = passBuf ? 4 : this.r.int(0, 3);
    if (k === 4) {
      const off = this.r.chance(0.95) ? 0 : this.r.pick([8, -buf]);
      if (this.r.chance(0.5)) body.push(`*(u64 *)(r2 ${at(off)}) = r1`, "r0 = 0");
      // each chance() is a new draw, not the same condition twice
      // deno-lint-ignore no-dupe-else-if
      else if (this.r.chance(0.5)) body.push(`r0 = *(u64 *)(r2 ${at(off)})`);
      else body.push("r1 = r2", "r2 = 16", "call bpf_get_current_comm", "r0 = 0");
    } else if (k === 0) body.push("r0 = r1", `r0 *= ${this.r.pick([3, 7, -1])}`, "r0 &= 63");
    else if (k === 1) {
      const info = GEN_MAPS[ARRAY];
      body.push(
        `*(u32 *)(r10 -4) = ${this.r.int(0, info.maxEntries - 1)}`,
        "r2 = r10",
        "r2 += -4",
        `r1 = map[${ARRAY}] ll`,
        "call bpf_map_lookup_elem",
        `if r0 == 0 goto ${out}`,
        `r0 = *(u64 *)(r0 ${at(this.r.near(8 * this.r.int(0, 7), 0.05, 8))})`,
        "exit",
        `${out}:`,
        "r0 = 0",
      );
    } else if (k === 2) {
      // A loop of its own, on its own stack.
      body.push(
        "r3 = 0",
        `${name}_loop:`,
        "r4 = r10",
        "r4 += -64",
        "r5 = r3",
        "r5 &= 63",
        "r4 += r5",
        "*(u8 *)(r4 +0) = 1",
        "r3 += 1",
        `if r3 < ${this.r.pick([4, 16, 64])} goto ${name}_loop`,
        "r0 = r3",
      );
    } else {
      body.push("call bpf_get_prandom_u32", `r0 &= ${this.r.pick([15, 255])}`);
      if (this.r.chance(0.05)) body.push("r0 = r6"); // the caller's R6 is not the callee's
      if (this.r.chance(0.03)) body.push("r0 = r10"); // its own stack, returned
    }
    body.push("exit");
    this.subs.push(...body);
  }

  pointerMischief() {
    const k = this.r.int(0, 5);
    if (k === 0) {
      this.emit("r2 = r10", `r2 += ${this.r.pick([-8, -16, -600])}`, "*(u64 *)(r2 +0) = 0");
    } else if (k === 1) this.emit("r2 = r10", "r2 -= 8");
    else if (k === 2) this.emit("r2 = r6", `r2 += ${this.r.pick([8, 16])}`, "r3 = *(u64 *)(r2 +0)");
    else if (k === 3) this.emit("r2 = r10", `r2 ${this.r.pick(["&=", "|=", "*="])} 8`);
    else if (k === 4) this.emit("r2 = r10", "r2 += -8", "r3 = r2", "r3 -= r10");
    else this.emit("r2 = r10", "w2 += 8");
  }
}

/** Everything a generated case carries. */
export interface GeneratedCase extends Case {
  /** Which snippets made it, for the report. */
  recipe: string[];
}

/** Generates program number `n` of the run seeded `seed`. */
export function generate(seed: number, n: number, task?: TaskFields): GeneratedCase {
  const r = new Rng((seed * 1_000_003 + n * 7919) >>> 0);
  const type = r.pick(TYPES);
  const g = new Gen(r, type, task);
  g.emit("r6 = r1");
  // Mostly short programs; some of a few hundred instructions.
  const snippets = r.chance(0.08) ? r.int(10, 30) : r.int(1, 6);
  const recipe: string[] = [];
  const tracing = type !== "socket_filter";
  for (let i = 0; i < snippets; i++) {
    const all: [string, () => void, number][] = [
      ["ctx", () => g.ctxRead(), 3],
      ["helper", () => g.helperScalar(), 2],
      ["alu", () => g.alu(), 3],
      ["map", () => g.mapUse(), 4],
      ["update", () => g.mapUpdate(), 2],
      ["loop", () => g.loop(), 1],
      ["diamond", () => g.diamond(), 2],
      ["stack", () => g.stackRoundTrip(), 2],
      ["probe", () => g.probeRead(), tracing ? 2 : 0],
      ["comm", () => g.comm(), 1],
      ["ringbuf", () => g.ringbuf(), 2],
      ["perf", () => g.perfOutput(), tracing ? 1 : 0],
      ["stackid", () => g.stackId(), tracing ? 1 : 0],
      ["task", () => g.taskRead(), type === "tp_btf" ? 4 : 0],
      ["pointer", () => g.pointerMischief(), 0.3],
      ["atomics", () => g.atomics(), 1],
      ["signed", () => g.signedOps(), 3],
      ["acqrel", () => g.acquireRelease(), 0.5],
      ["subprog", () => g.subprogram(), 1],
      ["nested", () => g.nestedLoops(), 0.5],
      ["flags", () => g.flaggedMap(), 0.5],
      ["varstack", () => g.varStack(), 1],
      ["jmp32", () => g.jmp32Index(), 1],
      ["globals", () => g.globals(), 0.7],
      ["packet", () => g.packet(), type === "socket_filter" ? 4 : 0.05],
      ["taskstack", () => g.taskStack(), tracing ? 0.7 : 0],
    ];
    const total = all.reduce((s, x) => s + x[2], 0);
    let x = r.next() * total;
    for (const [name, fn, w] of all) {
      if ((x -= w) < 0) {
        recipe.push(name);
        fn();
        break;
      }
    }
  }
  // Return value.
  const v = g.someScalar();
  if (r.chance(0.99)) g.emit(v && r.chance(0.3) ? `r0 = ${v}` : `r0 = ${r.int(0, 1)}`);
  g.emit("exit");
  g.emit(...g.subs);
  if (r.chance(0.01)) g.emit("r0 = 1", "exit"); // dead code
  const { insns, mapRefs } = assemble(g.lines.join("\n"));
  const mutated = r.chance(0.15) ? mutate(r, insns, recipe) : insns;
  return {
    name: `gen_${seed}_${n}`,
    progType: type,
    insns: mutated,
    maps: GEN_MAPS,
    mapRefs,
    tpBtf: type === "tp_btf" ? g.tp : undefined,
    recipe,
  };
}

const JUMP_SWAPS: Record<number, number> = {
  [op.BPF_JGT]: op.BPF_JGE,
  [op.BPF_JGE]: op.BPF_JGT,
  [op.BPF_JLT]: op.BPF_JLE,
  [op.BPF_JLE]: op.BPF_JLT,
  [op.BPF_JSGT]: op.BPF_JGT,
  [op.BPF_JSLT]: op.BPF_JLT,
  [op.BPF_JEQ]: op.BPF_JNE,
  [op.BPF_JNE]: op.BPF_JEQ,
};

/** Nudges one field of one instruction. */
function mutate(r: Rng, insns: Insn[], recipe: string[]): Insn[] {
  const out = insns.map((i) => ({ ...i }));
  const i = r.int(0, out.length - 1);
  const x = out[i];
  const cls = op.bpfClass(x.code);
  const kind = r.int(0, 5);
  if (kind === 0 && (cls === op.BPF_LDX || cls === op.BPF_STX || cls === op.BPF_ST)) {
    x.off += r.pick([-8, -4, -1, 1, 4, 8]);
  } else if (
    kind === 1 && (cls === op.BPF_JMP || cls === op.BPF_JMP32) &&
    JUMP_SWAPS[op.bpfOp(x.code)] !== undefined
  ) {
    x.code = (x.code & ~0xf0) | JUMP_SWAPS[op.bpfOp(x.code)];
  } else if (
    kind === 2 && (cls === op.BPF_ALU64 || cls === op.BPF_JMP) && op.bpfOp(x.code) < op.BPF_CALL
  ) {
    x.code = (x.code & ~0x07) | (cls === op.BPF_ALU64 ? op.BPF_ALU : op.BPF_JMP32);
  } else if (kind === 3 && x.code !== op.BPF_LDDW && op.bpfOp(x.code) !== op.BPF_CALL) {
    x.imm += r.pick([-1, 1, 8, -8]);
  } else if (kind === 4 && (cls === op.BPF_LDX || cls === op.BPF_STX)) {
    x.code = (x.code & ~0x18) | r.pick([op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW]);
  } else if (
    kind === 5 && x.code !== op.BPF_LDDW && op.bpfOp(x.code) !== op.BPF_CALL && x.dst < 10
  ) {
    x.dst = r.pick([0, 1, 2, 3, 6, 7, 8, 9]);
  } else {
    return insns;
  }
  recipe.push(`mutate@${i}`);
  return out;
}
