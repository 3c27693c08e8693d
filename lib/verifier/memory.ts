/**
 * Loads and stores: which pointer may be dereferenced, where, and what the
 * load yields. The stack is tracked byte by byte; map values and ring buffer
 * records are bounds-checked with the pointer's full offset range (the
 * kernel's `check_mem_region_access`); typed kernel structs are checked
 * against their BTF layout; the context follows the program type's rules.
 *
 * @module
 */

import { fail } from "./errors.ts";
import { ctxAccess, type CtxRules } from "./ctx_access.ts";
import { MAX_VAR_OFF } from "./alu.ts";
import { mapAccessForbidden } from "./map_flags.ts";
import { toBigS, toNumS } from "./int64.ts";
import { markSlotsRead, type PathMarks } from "./prune.ts";
import {
  constNum,
  isConst,
  isZero,
  known,
  noSignedMin,
  type Scalar,
  smaxNum,
  sminNum,
  truncate,
  umaxNum,
  unknownOfSize,
} from "./scalar.ts";
import {
  describeReg,
  isPointer,
  type MachineState,
  pointerReg,
  type Reg,
  regTypeName,
  scalarReg,
  STACK_SIZE,
  StackByte,
} from "./state.ts";
import type { HelperProto } from "../../bytecode/helpers.ts";
import type { DiagnosticCode, KernelTypes } from "./types.ts";

/** What memory checks need besides the state. */
export interface MemEnv {
  pc: number;
  ctx: CtxRules;
  kernelTypes?: KernelTypes;
  allowPointerLeaks: boolean;
  gpl: boolean;
  /** A fresh id (for pointers that must be checked against NULL). */
  nextId(): number;
  /** Deepest stack byte each subprogram touched (bytes below its frame pointer). */
  stackDepths?: Int32Array;
  /**
   * The path being explored: stack slots (8 bytes, 0 = fp-512) read are
   * marked on its checkpoints, slots overwritten whole on the path (for
   * state pruning).
   */
  marks?: PathMarks;
}

/** Bits from..to (inclusive, 0-31) set. */
function bitRange(from: number, to: number): number {
  return to - from === 31 ? -1 : (((1 << (to - from + 1)) - 1) << from);
}

/** Marks the slots holding stack bytes [from, to) as read. */
function slotsRead(env: MemEnv, from: number, to: number): void {
  if (env.marks === undefined || to <= from) return;
  const first = from >> 3, last = (to - 1) >> 3;
  const lo = first < 32 ? bitRange(first, last < 32 ? last : 31) : 0;
  const hi = last >= 32 ? bitRange(first < 32 ? 0 : first - 32, last - 32) : 0;
  markSlotsRead(env.marks, lo, hi);
}

/** Notes that the path overwrote a whole slot. */
function slotWritten(env: MemEnv, slot: number): void {
  const m = env.marks;
  if (m === undefined) return;
  if (slot < 32) m.wroteLo |= 1 << slot;
  else m.wroteHi |= 1 << (slot - 32);
}

/** A store's value: a register's, or an immediate (BPF_ST, a number). */
export type StoreValue = Reg | number;

const leakOrFail = (env: MemEnv, why: string) => {
  if (!env.allowPointerLeaks) fail("pointer-leak", env.pc, why);
};

/** Loads `size` bytes from `base + off`; returns the loaded register value. */
export function load(
  env: MemEnv,
  st: MachineState,
  baseRegNo: number,
  off: number,
  size: number,
): Reg {
  const base = st.regs[baseRegNo];
  // The stack first: the most common case, with none of the checks below.
  if (base.kind === "stack") {
    if (base.frame !== st.frameNo) {
      // A caller's stack, through a pointer it passed down.
      return st.inFrame(
        base.frame,
        () => stackAccess(env, st, baseRegNo, base, off, size, undefined),
      )!;
    }
    return stackAccess(env, st, baseRegNo, base, off, size, undefined)!;
  }
  return access(env, st, baseRegNo, base, off, size, undefined) ?? scalarReg(unknownOfSize(size));
}

/** Stores `size` bytes at `base + off`. */
export function store(
  env: MemEnv,
  st: MachineState,
  baseRegNo: number,
  off: number,
  size: number,
  value: StoreValue,
): void {
  const base = st.regs[baseRegNo];
  if (base.kind !== "stack") access(env, st, baseRegNo, base, off, size, value);
  else if (base.frame === st.frameNo) stackAccess(env, st, baseRegNo, base, off, size, value);
  else {
    if (typeof value !== "number" && value.kind === "stack" && value.frame > base.frame) {
      // The callee's frame ends before the caller's: the pointer would dangle.
      fail(
        "invalid-mem-access",
        env.pc,
        "a pointer to this frame's stack cannot be saved in a caller's stack",
      );
    }
    st.inFrame(base.frame, () => stackAccess(env, st, baseRegNo, base, off, size, value));
  }
}

function access(
  env: MemEnv,
  st: MachineState,
  r: number,
  base: Reg,
  off: number,
  size: number,
  value: StoreValue | undefined,
): Reg | undefined {
  const pc = env.pc;
  const write = value !== undefined;
  if (base.kind === "uninit") {
    fail("uninit-register", pc, `R${r} is used as a pointer before it is written`);
  }
  if (base.maybeNull) {
    const code: DiagnosticCode = base.kind === "btf_id" ? "invalid-mem-access" : "null-map-value";
    fail(code, pc, `R${r} is ${regTypeName(base)}: compare it with 0 before using it`);
  }
  if (write && typeof value !== "number" && isPointer(value) && base.kind !== "stack") {
    leakOrFail(
      env,
      `storing a pointer (${regTypeName(value)}) into ${
        regTypeName(base)
      } memory exposes a kernel address`,
    );
  }
  switch (base.kind) {
    case "stack":
      return stackAccess(env, st, r, base, off, size, value);
    case "ctx":
      return ctxMem(env, r, base, off, size, value);
    case "map_value": {
      const map = base.map!;
      const forbidden = mapAccessForbidden(map, write);
      if (forbidden) fail("invalid-mem-access", pc, forbidden);
      regionCheck(pc, r, base, off, size, map.valueSize, "map-out-of-bounds", "map value");
      return write ? undefined : scalarReg(unknownOfSize(size));
    }
    case "ringbuf_mem":
      regionCheck(
        pc,
        r,
        base,
        off,
        size,
        base.memSize ?? 0,
        "map-out-of-bounds",
        "ring buffer record",
      );
      return write ? undefined : scalarReg(unknownOfSize(size));
    case "btf_id":
      return btfAccess(env, r, base, off, size, write);
    case "map_ptr":
      return mapStructAccess(env, base, off, size, write);
    case "scalar":
      if (isZero(base.val)) {
        fail("invalid-mem-access", pc, `R${r} is NULL (0) on this path`);
      }
      fail(
        "invalid-mem-access",
        pc,
        `R${r} is a number, not a pointer: read kernel memory with bpf_probe_read_kernel (or user memory with bpf_probe_read_user)`,
      );
      break;
    default:
      fail("invalid-mem-access", pc, `R${r} (${regTypeName(base)}) cannot be dereferenced`);
  }
  return undefined;
}

/**
 * Offset range [lo, hi] of `base + off` for pointers with a variable part,
 * as doubles: exact for every offset that passes the bounds checks.
 */
function offsetRange(base: Reg, off: number): { lo: number; hi: number; known: boolean } {
  const v = base.val;
  const fixed = base.off + off;
  if (isConst(v)) {
    const x = constNum(v) + fixed;
    return { lo: x, hi: x, known: true };
  }
  return { lo: sminNum(v) + fixed, hi: smaxNum(v) + fixed, known: false };
}

/** The kernel's check_mem_region_access for map values and ring buffer records. */
function regionCheck(
  pc: number,
  r: number,
  base: Reg,
  insnOff: number,
  size: number,
  memSize: number,
  code: DiagnosticCode,
  what: string,
): void {
  // Doubles: exact for small values, ordered for large ones (messages use bigints).
  const off = base.off + insnOff;
  const v = base.val;
  const smin = sminNum(v);
  if (smin < 0 && (noSignedMin(v) || smin + off < 0 || !fitsS32(off + smin))) {
    fail(code, pc, `R${r}'s offset may be negative (${describeReg(base)}): bound the index first`);
  }
  const lo = smin + off;
  if (lo < 0 || lo + size > memSize) {
    const exact = toBigS(v.sminHi, v.sminLo) + BigInt(off);
    fail(
      code,
      pc,
      `${what} access at offset ${exact} size ${size} is outside the ${memSize}-byte ${what}`,
    );
  }
  const umax = umaxNum(v);
  if (umax >= MAX_VAR_OFF) {
    fail(
      code,
      pc,
      `R${r}'s offset has no upper bound (${describeReg(base)}): bound the index first`,
    );
  }
  const hi = umax + off;
  if (hi < 0 || hi + size > memSize) {
    fail(
      code,
      pc,
      `${what} access at offset up to ${hi} size ${size} is outside the ${memSize}-byte ${what}`,
    );
  }
}

function fitsS32(x: number): boolean {
  return x >= -0x8000_0000 && x <= 0x7fff_ffff;
}

function ctxMem(
  env: MemEnv,
  r: number,
  base: Reg,
  off: number,
  size: number,
  value: StoreValue | undefined,
): Reg | undefined {
  const pc = env.pc;
  if (base.off !== 0) {
    fail(
      "ctx-out-of-bounds",
      pc,
      `R${r} is the context moved by ${base.off}: use the load's offset field instead`,
    );
  }
  if (!isZero(base.val)) {
    fail(
      "ctx-out-of-bounds",
      pc,
      `variable context offsets are not allowed (${describeReg(base)})`,
    );
  }
  const ans = ctxAccess(env.ctx, off, size, value !== undefined);
  if (!ans.ok) fail("ctx-out-of-bounds", pc, `${env.ctx.progType} context: ${ans.why}`);
  // A pointer that may be NULL gets an identity, so that checking one copy checks all.
  if (ans.value?.maybeNull) return { ...ans.value, id: env.nextId() };
  return ans.value;
}

function btfAccess(
  env: MemEnv,
  _r: number,
  base: Reg,
  insnOff: number,
  size: number,
  write: boolean,
): Reg | undefined {
  const pc = env.pc;
  const name = `struct ${base.struct}`;
  if (write) fail("invalid-mem-access", pc, `${name} is kernel memory: programs may only read it`);
  if (!env.gpl) fail("invalid-mem-access", pc, `reading ${name} needs a GPL-compatible license`);
  if (!isZero(base.val)) {
    fail(
      "invalid-mem-access",
      pc,
      `variable offsets into ${name} are not allowed (${describeReg(base)})`,
    );
  }
  const off = base.off + insnOff;
  if (off < 0) fail("invalid-mem-access", pc, `negative offset ${off} into ${name}`);
  const types = env.kernelTypes;
  if (!types || !base.struct) {
    fail("invalid-mem-access", pc, `the layout of ${name} is unknown (pass kernelTypes)`);
  }
  const a = types.access(base.struct, off, size);
  if (a.kind === "error") fail("invalid-mem-access", pc, a.message);
  if (a.kind === "pointer") {
    const rcu = (base.trusted === true || base.rcu === true) && RCU_SAFE.has(a.field ?? "");
    return pointerReg(
      "btf_id",
      rcu ? { struct: a.struct, trusted: false, rcu } : {
        struct: a.struct,
        trusted: false,
      },
    );
  }
  if (a.kind === "untrusted-mem") return pointerReg("opaque_mem");
  return scalarReg(unknownOfSize(size));
}

/**
 * Pointer fields the kernel keeps valid under RCU (BTF_TYPE_SAFE_RCU): read
 * from a trusted struct in a (non-sleepable) tracing program they may be
 * passed to helpers.
 */
const RCU_SAFE: ReadonlySet<string> = new Set([
  "task_struct.real_parent",
  "task_struct.group_leader",
]);

/** The kernel struct behind each map type's handle (its ops' map_btf_id). */
const MAP_STRUCT: Readonly<Record<string, string>> = {
  hash: "bpf_htab",
  percpu_hash: "bpf_htab",
  lru_hash: "bpf_htab",
  lru_percpu_hash: "bpf_htab",
  array: "bpf_array",
  percpu_array: "bpf_array",
  perf_event_array: "bpf_array",
  cgroup_array: "bpf_array",
  stack_trace: "bpf_stack_map",
  ringbuf: "bpf_ringbuf_map",
  task_storage: "bpf_local_storage_map",
};

/**
 * Reads through a map handle (`lddw map` then a load): the kernel's
 * check_ptr_to_map_access lets privileged programs read the map's kernel
 * struct (e.g. `struct bpf_map` max_entries at its start). Pointers read
 * there are kept opaque.
 */
function mapStructAccess(
  env: MemEnv,
  base: Reg,
  insnOff: number,
  size: number,
  write: boolean,
): Reg | undefined {
  const pc = env.pc;
  if (write) fail("invalid-mem-access", pc, "a map handle may only be read through");
  const struct = MAP_STRUCT[base.map?.type ?? ""];
  const types = env.kernelTypes;
  if (!struct || !types || types.structSize(struct) === undefined) {
    fail("invalid-mem-access", pc, "reading through this map handle is not supported");
  }
  if (!isZero(base.val) || base.off !== 0) {
    fail("invalid-mem-access", pc, "reads through a map handle need a constant offset");
  }
  if (insnOff < 0) {
    fail("invalid-mem-access", pc, `negative offset ${insnOff} into struct ${struct}`);
  }
  const a = types.access(struct, insnOff, size);
  if (a.kind === "error") fail("invalid-mem-access", pc, a.message);
  if (a.kind !== "scalar") return pointerReg("opaque_mem");
  return scalarReg(unknownOfSize(size));
}

// ---------------------------------------------------------------- stack

function stackAccess(
  env: MemEnv,
  st: MachineState,
  r: number,
  base: Reg,
  off: number,
  size: number,
  value: StoreValue | undefined,
): Reg | undefined {
  const pc = env.pc;
  const v = base.val;
  const fixed = base.off + off;
  const isKnown = v.mHi === 0 && v.mLo === 0;
  // Doubles: exact for every offset that passes the checks below.
  const lo = (isKnown ? toNumS(v.vHi, v.vLo) : toNumS(v.sminHi, v.sminLo)) + fixed;
  const hi = isKnown ? lo : toNumS(v.smaxHi, v.smaxLo) + fixed;
  if (!isKnown && (smaxNum(base.val) >= MAX_VAR_OFF || sminNum(base.val) <= -MAX_VAR_OFF)) {
    fail(
      "stack-out-of-bounds",
      pc,
      `R${r} has an unbounded variable stack offset (${describeReg(base)})`,
    );
  }
  if (lo < -STACK_SIZE || hi + size > 0) {
    fail(
      "stack-out-of-bounds",
      pc,
      `stack access at fp${fmtOff(lo)}${
        isKnown ? "" : `..fp${fmtOff(hi)}`
      } size ${size} is outside the ${STACK_SIZE}-byte frame (fp-${STACK_SIZE}..fp-1)`,
    );
  }
  noteDepth(env, st, lo);
  // The kernel insists on aligned stack accesses.
  if (size > 1) {
    // Only the low bits matter: the low half is enough.
    const mask = size - 1;
    if ((v.mLo & mask) !== 0 || ((v.vLo + fixed) & mask) !== 0) {
      fail("stack-out-of-bounds", pc, `misaligned stack access at fp${fmtOff(lo)} size ${size}`);
    }
  }
  if (!isKnown) return stackVarAccess(env, st, lo, hi, size, value);
  const at = STACK_SIZE + lo;
  return value === undefined ? stackRead(env, st, at, size) : stackWrite(env, st, at, size, value);
}

function fmtOff(x: number): string {
  return x < 0 ? `${x}` : `+${x}`;
}

/** Drops a saved register from a slot: its bytes become plain data. */
function scrubSlot(st: MachineState, slot: number): void {
  const saved = st.spills[slot];
  if (saved === undefined) return;
  const byteKind = isPointer(saved) ? StackByte.PointerPart : StackByte.Misc;
  for (let i = slot * 8; i < slot * 8 + 8; i++) {
    if (st.stack[i] === StackByte.Spill) st.stack[i] = byteKind;
  }
  st.clearSpill(slot);
}

function stackWrite(
  env: MemEnv,
  st: MachineState,
  at: number,
  size: number,
  value: StoreValue,
): undefined {
  st.ownStack();
  const slot = at >> 3;
  const aligned8 = size === 8 && (at & 7) === 0;
  const reg = typeof value === "number" ? undefined : value;
  const imm = typeof value === "number" ? value : 0;
  if (reg !== undefined && reg.kind !== "scalar" && size !== 8) {
    fail(
      "pointer-leak",
      env.pc,
      `a ${size}-byte store of a pointer (${regTypeName(reg)}) keeps only part of it`,
    );
  }
  for (let s = slot; s <= (at + size - 1) >> 3; s++) {
    if (st.spills[s] !== undefined) scrubSlot(st, s);
  }
  if (aligned8) slotWritten(env, slot);
  if ((at & 7) === 0 && (reg === undefined || aligned8 || reg.kind === "scalar")) {
    // Saving a whole register: remembered with its type and bounds. A
    // narrow number stored at the start of a slot is remembered too (the
    // kernel tracks it as a partial spill): its bytes are the first `size`.
    st.setSpill(slot, reg ?? scalarReg(known(imm)));
    st.stack.fill(StackByte.Spill, at, at + size);
    return;
  }
  const zero = reg === undefined
    ? lowBytesZero(imm < 0 ? -1 : 0, imm | 0, size)
    : reg.kind === "scalar" && isConst(reg.val) && lowBytesZero(reg.val.vHi, reg.val.vLo, size);
  st.stack.fill(zero ? StackByte.Zero : StackByte.Misc, at, at + size);
  return undefined;
}

/** Are the low `size` bytes (1, 2, 4 or 8) of the 64-bit value hi:lo zero? */
function lowBytesZero(hi: number, lo: number, size: number): boolean {
  if (size === 8) return hi === 0 && lo === 0;
  return size === 4 ? lo === 0 : (lo & (2 ** (size * 8) - 1)) === 0;
}

/** Do stack bytes [from, to) hold only written numbers (no gap, no pointer)? */
function plainData(st: MachineState, from: number, to: number): boolean {
  const stack = st.stack;
  const invalid = stack.indexOf(StackByte.Invalid, from);
  if (invalid >= 0 && invalid < to) return false;
  const part = stack.indexOf(StackByte.PointerPart, from);
  if (part >= 0 && part < to) return false;
  for (let s = from >> 3; s <= (to - 1) >> 3; s++) {
    const saved = st.spills[s];
    if (saved !== undefined && saved.kind !== "scalar") return false;
  }
  return true;
}

/** How many bytes of a slot a saved register covers (from the slot's start). */
export function spilledBytes(st: MachineState, slot: number): number {
  let n = 0;
  while (n < 8 && st.stack[slot * 8 + n] === StackByte.Spill) n++;
  return n;
}

function stackRead(env: MemEnv, st: MachineState, at: number, size: number): Reg {
  const pc = env.pc;
  slotsRead(env, at, at + size);
  const slot = at >> 3;
  const saved = st.spills[slot];
  if (saved && st.stack[at] === StackByte.Spill) {
    const spillSize = spilledBytes(st, slot);
    if (size === 8 && spillSize === 8) return saved;
    if (isPointer(saved)) {
      fail(
        "pointer-leak",
        pc,
        `reading ${size} bytes of a saved pointer (${regTypeName(saved)}) leaks part of it`,
      );
    }
    if ((at & 7) === 0 && size <= spillSize) return scalarReg(truncate(saved.val, size));
  }
  let zeros = 0;
  for (let i = at; i < at + size; i++) {
    const b = st.stack[i];
    if (b === StackByte.Invalid) {
      fail(
        "uninit-stack",
        pc,
        `read of fp${i - STACK_SIZE} (size ${size} at fp${
          at - STACK_SIZE
        }): the stack there was never written`,
      );
    }
    if (b === StackByte.PointerPart) {
      fail(
        "pointer-leak",
        pc,
        `fp${i - STACK_SIZE} holds part of a pointer: reading it leaks an address`,
      );
    }
    if (b === StackByte.Spill) {
      const s = st.spills[i >> 3];
      if (s && isPointer(s)) {
        fail(
          "pointer-leak",
          pc,
          `fp${i - STACK_SIZE} holds part of a saved pointer: reading it leaks an address`,
        );
      }
    }
    if (b === StackByte.Zero) zeros++;
  }
  if (zeros === size) return scalarReg(known(0));
  return scalarReg(unknownOfSize(size));
}

function stackVarAccess(
  env: MemEnv,
  st: MachineState,
  lo: number,
  hi: number,
  size: number,
  value: StoreValue | undefined,
): Reg | undefined {
  st.ownStack();
  const pc = env.pc;
  const from = STACK_SIZE + lo, to = STACK_SIZE + hi + size;
  if (value === undefined) {
    slotsRead(env, from, to);
    for (let i = from; i < to; i++) {
      const b = st.stack[i];
      if (b === StackByte.Invalid) {
        fail(
          "uninit-stack",
          pc,
          `variable-offset read may touch fp${i - STACK_SIZE}, which was never written`,
        );
      }
      if (b === StackByte.PointerPart || (b === StackByte.Spill && isPointer(st.spills[i >> 3]!))) {
        fail(
          "pointer-leak",
          pc,
          `variable-offset read may touch a saved pointer at fp${i - STACK_SIZE}`,
        );
      }
    }
    // Zeros wherever it reads: the kernel knows the result is 0 (mark_reg_stack_read).
    let zeros = from;
    while (zeros < to && st.stack[zeros] === StackByte.Zero) zeros++;
    if (zeros === to) return scalarReg(known(0));
    return scalarReg(unknownOfSize(size));
  }
  if (typeof value !== "number" && isPointer(value)) {
    fail("pointer-leak", pc, "storing a pointer at a variable stack offset is not allowed");
  }
  // Any byte in range may or may not be written: data stays data, saved
  // registers lose their identity, never-written bytes stay never-written.
  for (let s = from >> 3; s <= (to - 1) >> 3; s++) scrubSlot(st, s);
  for (let i = from; i < to; i++) if (st.stack[i] === StackByte.Zero) st.stack[i] = StackByte.Misc;
  return undefined;
}

/** Records how deep below its frame pointer the current subprogram reached. */
function noteDepth(env: MemEnv, st: MachineState, lo: number): void {
  const d = env.stackDepths;
  if (d !== undefined && -lo > d[st.sub]) d[st.sub] = -lo;
}

/** `bpf_<name> argument <r>`, for messages. */
function argLabel(helper: HelperProto, r: number): string {
  return `bpf_${helper.name} argument ${r}`;
}

/**
 * Checks that a helper may read (`write` false) or write `size` bytes at the
 * pointer in `reg`; for stack memory, marks written bytes initialized.
 * Reads need every byte written and, unless `allowPointerLeaks`, no
 * pointer among them; `identityKey` lets a saved typed kernel pointer
 * through (a map key that identifies a kernel object).
 */
export function helperMem(
  env: MemEnv,
  st: MachineState,
  regNo: number,
  reg: Reg,
  size: Scalar,
  access: "read" | "write",
  helper: HelperProto,
  identityKey = false,
): void {
  if (reg.kind === "stack" && reg.frame !== st.frameNo) {
    // A buffer in a caller's stack, passed down.
    const args = [env, st, regNo, reg, size, access, helper, identityKey] as const;
    return st.inFrame(reg.frame, () => helperMem(...args));
  }
  const pc = env.pc;
  const maxSize = umaxNum(size);
  if (maxSize === 0) {
    // Even an empty buffer on the stack must start inside the frame: the
    // kernel checks the lowest offset against [-512, -1] whatever the size.
    if (reg.kind === "stack") {
      const { lo, hi } = offsetRange(reg, 0);
      if (lo < -STACK_SIZE || lo > -1 || hi > 0) {
        fail(
          "stack-out-of-bounds",
          pc,
          `${argLabel(helper, regNo)}: an empty buffer at fp${fmtOff(lo)} is outside the frame`,
        );
      }
    }
    return;
  }
  switch (reg.kind) {
    case "stack": {
      const { lo, hi, known: isKnown } = offsetRange(reg, 0);
      if (
        !isKnown && (smaxNum(reg.val) >= MAX_VAR_OFF || sminNum(reg.val) <= -MAX_VAR_OFF)
      ) {
        fail("stack-out-of-bounds", pc, `R${regNo} has an unbounded variable stack offset`);
      }
      if (lo < -STACK_SIZE || hi + maxSize > 0) {
        fail(
          "stack-out-of-bounds",
          pc,
          `${argLabel(helper, regNo)}: ${maxSize} bytes at fp${
            fmtOff(lo)
          } go outside the ${STACK_SIZE}-byte frame`,
        );
      }
      noteDepth(env, st, lo);
      const from = STACK_SIZE + lo, to = STACK_SIZE + hi + maxSize;
      if (access === "read") {
        slotsRead(env, from, to);
        // Usually every byte is plain written data: native scans say so
        // quickly; otherwise the byte loop finds the first problem.
        if (plainData(st, from, to)) return;
        for (let i = from; i < to; i++) {
          const b = st.stack[i];
          if (b === StackByte.Invalid) {
            fail(
              "uninit-stack",
              pc,
              `${argLabel(helper, regNo)}: fp${i - STACK_SIZE} (byte ${
                i - from
              } of the buffer at R${regNo}) was never written`,
            );
          }
          const saved = b === StackByte.Spill ? st.spills[i >> 3] : undefined;
          // A typed kernel object's address may serve as a map key (the
          // identity of a request or a task): it is compared, never shown.
          if (identityKey && saved?.kind === "btf_id") continue;
          if (b === StackByte.PointerPart || (saved && isPointer(saved))) {
            leakOrFail(
              env,
              `${argLabel(helper, regNo)}: the buffer at R${regNo} holds a pointer at fp${
                i - STACK_SIZE
              }`,
            );
          }
        }
        return;
      }
      st.ownStack();
      for (let s = from >> 3; s <= (to - 1) >> 3; s++) {
        // A helper overwriting a saved register: it becomes data (or stays
        // pointer bytes if the write may not cover it).
        const saved = st.spills[s];
        if (saved === undefined) continue;
        const whole = s * 8 >= from && s * 8 + 8 <= to && isKnown;
        st.clearSpill(s);
        for (let i = s * 8; i < s * 8 + 8; i++) {
          if (st.stack[i] === StackByte.Spill) {
            st.stack[i] = isPointer(saved) && !whole ? StackByte.PointerPart : StackByte.Misc;
          }
        }
      }
      if (isKnown) st.stack.fill(StackByte.Misc, from, to);
      else {
        for (let i = from; i < to; i++) {
          if (st.stack[i] === StackByte.Zero) st.stack[i] = StackByte.Misc;
        }
      }
      return;
    }
    case "map_value": {
      const forbidden = mapAccessForbidden(reg.map!, access === "write");
      if (forbidden) fail("bad-helper-arg", pc, `${argLabel(helper, regNo)}: ${forbidden}`);
      regionCheck(pc, regNo, reg, 0, maxSize, reg.map!.valueSize, "map-out-of-bounds", "map value");
      return;
    }
    case "ringbuf_mem":
      regionCheck(
        pc,
        regNo,
        reg,
        0,
        maxSize,
        reg.memSize ?? 0,
        "map-out-of-bounds",
        "ring buffer record",
      );
      return;
    default:
      fail(
        "bad-helper-arg",
        pc,
        `${argLabel(helper, regNo)}: R${regNo} is ${
          regTypeName(reg)
        }, expected a pointer to the stack, a map value or a ring buffer record`,
      );
  }
}
