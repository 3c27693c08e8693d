/**
 * Path exploration, the way the kernel's `do_check` does it: simulate every
 * path from the first instruction, forking at conditional jumps whose outcome
 * the ranges do not decide, and stopping a path at exit, at the first error,
 * or when an already fully explored state at the same instruction covers it.
 *
 * Loops need no special case: a bounded loop is simulated iteration by
 * iteration until its condition decides the exit; a state that repeats
 * exactly while still being explored is an infinite loop; a loop still
 * running when the budget is spent is reported as not provably bounded.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";
import { execAlu, readReg, writeReg } from "./alu.ts";
import { branchTaken, jmp32IsExact, negateJump, refine, refineJset } from "./branch.ts";
import { type CallEnv, execHelperCall } from "./calls.ts";
import type { Cfg } from "./cfg.ts";
import { fail } from "./errors.ts";
import { encodingProblem } from "./isa_check.ts";
import { checkInsnPtrType } from "./insn_ptr_type.ts";
import { load, store } from "./memory.ts";
import { signExtend } from "./sign_extend.ts";
import { MAX_CALL_FRAMES, type Subprogs } from "./subprogs.ts";
import { finish, markRegsRead, markSlotsRead, type PathMarks, PruneStates } from "./prune.ts";
import { jumpTarget, type ProgramView } from "./program.ts";
import { isConst, isZero, known, knownHalves, type Scalar, unknownOfSize } from "./scalar.ts";
import {
  entryState,
  isPointer,
  type MachineState,
  pointerReg,
  type Reg,
  regTypeName,
  scalarReg,
  UNINIT,
  UNKNOWN_SCALAR,
} from "./state.ts";
import type { MapInfo } from "./types.ts";

/** Kernel limit on pending branches (BPF_COMPLEXITY_LIMIT_JMP_SEQ). */
const MAX_PENDING = 8192;

/** Everything the exploration needs. */
export interface ExploreEnv extends CallEnv {
  program: ProgramView;
  cfg: Cfg;
  live: Uint16Array;
  limit: number;
  hasLoops: boolean;
  /** Registers each instruction reads (bit masks). */
  uses: Uint16Array;
  /** Registers each instruction writes (bit masks). */
  defs: Uint16Array;
  /** Instructions on a cycle of the control-flow graph. */
  onCycle: Uint8Array;
  /** Instructions whose fields were checked already. */
  fieldsChecked: Uint8Array;
  /** Kind of pointer each load or store went through first (insn_ptr_type.ts). */
  ptrTypes: Uint8Array;
  /** Subprograms, when the program makes bpf-to-bpf calls. */
  subprogs?: Subprogs;
  /** Map for an `lddw` at logical index i with fd `imm`. */
  mapFor(index: number, fd: number): MapInfo | undefined;
  /** Immediates of conditional jumps as scalars, by instruction (filled on first use). */
  imms: (Scalar | undefined)[];
  /** Set by a conditional jump that goes both ways: where the other path starts. */
  forkPc: number;
  /** Its state (valid while forkPc >= 0). */
  forkSt: MachineState | undefined;
}

interface Path extends PathMarks {
  pc: number;
  st: MachineState;
}

/** Explores all paths; throws VerifyError at the first error. Returns instructions processed. */
export function explore(env: ExploreEnv): number {
  const insns = env.program.insns;
  const prunePoint = env.cfg.prunePoint, onCycle = env.onCycle, live = env.live;
  const uses = env.uses, defs = env.defs, fieldsChecked = env.fieldsChecked;
  const limit = env.limit;
  const explored: (PruneStates | undefined)[] = new Array(insns.length);
  const pending: Path[] = [];
  let processed = 0;
  let cur: Path | undefined = {
    pc: 0,
    st: entryState(),
    parent: null,
    wroteRegs: 0,
    wroteLo: 0,
    wroteHi: 0,
  };
  while (cur !== undefined) {
    const pc = cur.pc;
    env.pc = pc;
    if (++processed > limit) tooLong(env, pc);
    // Inside a bpf-to-bpf call states are not compared (the callers' frames would have to be).
    if (prunePoint[pc] === 1 && cur.st.frames.length === 0) {
      const states = explored[pc] ??= new PruneStates(
        pc,
        live[pc],
        onCycle[pc] === 1,
        insns[pc].code === (op.BPF_JMP | op.BPF_JCOND),
      );
      const pruned = states.covering(cur.st);
      if (pruned !== undefined) {
        // The pruned path would have read what the state that covers it read.
        markRegsRead(cur, pruned.readRegs);
        markSlotsRead(cur, pruned.readLo, pruned.readHi);
        finish(cur.parent);
        cur = pending.pop();
        continue;
      }
      const cp = states.keep(cur);
      if (cp !== undefined) {
        cur.parent = cp;
        cur.wroteRegs = 0;
        cur.wroteLo = 0;
        cur.wroteHi = 0;
      }
    }
    // Stack reads and whole-slot writes are marked by the memory checks.
    env.marks = cur;
    const used = uses[pc];
    if ((used & ~cur.wroteRegs) !== 0) markRegsRead(cur, used);
    const insn = insns[pc];
    if (fieldsChecked[pc] === 0) {
      // Reserved fields are checked when a path first gets here, as the kernel does.
      const why = encodingProblem(insn);
      if (why) fail("invalid-opcode", pc, why);
      fieldsChecked[pc] = 1;
    }
    const st = cur.st;
    // Dispatch on the instruction class (literal cases make a jump table).
    switch (insn.code & 0x07) {
      case 0x04: // BPF_ALU
      case 0x07: // BPF_ALU64
        execAlu(env, st, insn);
        break;
      case 0x01: // BPF_LDX
        execLoad(env, st, insn);
        break;
      case 0x02: // BPF_ST
      case 0x03: // BPF_STX
        execStore(env, st, insn);
        break;
      case 0x00: // BPF_LD
        execLd(env, st, insn, pc);
        break;
      default: { // BPF_JMP, BPF_JMP32
        env.forkPc = -1;
        const next = execJump(env, st, insn, pc);
        cur.wroteRegs |= defs[pc];
        if (next < 0) {
          finish(cur.parent);
          cur = pending.pop();
          continue;
        }
        if (env.forkPc >= 0) {
          if (cur.parent !== null) cur.parent.branches++;
          pending.push({
            pc: env.forkPc,
            st: env.forkSt!,
            parent: cur.parent,
            wroteRegs: cur.wroteRegs,
            wroteLo: cur.wroteLo,
            wroteHi: cur.wroteHi,
          });
          env.forkSt = undefined;
          if (pending.length > MAX_PENDING) tooManyBranches(env, pc);
        }
        cur.pc = next;
        continue;
      }
    }
    cur.wroteRegs |= defs[pc];
    cur.pc = pc + 1;
  }
  return processed;
}

function tooLong(env: ExploreEnv, pc: number): never {
  return fail(
    env.hasLoops ? "back-edge" : "too-complex",
    pc,
    env.hasLoops
      ? `a loop is not provably bounded: still running after ${env.limit} simulated instructions`
      : `too many paths: more than ${env.limit} instructions simulated`,
  );
}

function tooManyBranches(env: ExploreEnv, pc: number): never {
  return fail(
    env.hasLoops ? "back-edge" : "too-complex",
    pc,
    `more than ${MAX_PENDING} pending branches: ${
      env.hasLoops ? "the loop is too long to verify" : "too many paths"
    }`,
  );
}

/** Bytes per access, indexed by the size bits >> 3 (W, H, B, DW). */
const SIZE_BYTES = [4, 2, 1, 8];

function sizeBytes(code: number): number {
  return SIZE_BYTES[(code >> 3) & 3];
}

function execLoad(env: ExploreEnv, st: MachineState, insn: Insn): void {
  const pc = env.pc;
  readReg(st, insn.src, pc);
  if (insn.dst === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
  const size = sizeBytes(insn.code);
  const sx = (insn.code & 0xe0) === op.BPF_MEMSX;
  const base = st.regs[insn.src];
  if (sx && base.kind !== "stack" && base.kind !== "map_value" && base.kind !== "ringbuf_mem") {
    fail(
      "invalid-mem-access",
      pc,
      `sign-extending loads from ${regTypeName(base)} are not supported`,
    );
  }
  let v = load(env, st, insn.src, insn.off, size);
  checkInsnPtrType(env.ptrTypes, pc, base);
  if (sx && v.kind === "scalar") v = scalarReg(signExtend(v.val, size * 8));
  st.regs[insn.dst] = v;
}

function execStore(env: ExploreEnv, st: MachineState, insn: Insn): void {
  const pc = env.pc;
  const size = sizeBytes(insn.code);
  if ((insn.code & 0x07) === op.BPF_ST) {
    readReg(st, insn.dst, pc);
    store(env, st, insn.dst, insn.off, size, insn.imm);
    checkInsnPtrType(env.ptrTypes, pc, st.regs[insn.dst]);
    return;
  }
  const atomic = (insn.code & 0xe0) === op.BPF_ATOMIC;
  if (atomic && insn.imm === op.BPF_LOAD_ACQ) return loadAcquire(env, st, insn, size);
  const value = readReg(st, insn.src, pc);
  readReg(st, insn.dst, pc);
  if (atomic && insn.imm === op.BPF_STORE_REL) {
    atomicBase(env, st.regs[insn.dst]);
    atomicAligned(env, st.regs[insn.dst], insn.off, size);
    store(env, st, insn.dst, insn.off, size, value);
    return;
  }
  if (atomic) return execAtomic(env, st, insn, value, size);
  const base = st.regs[insn.dst];
  store(env, st, insn.dst, insn.off, size, value);
  checkInsnPtrType(env.ptrTypes, pc, base);
}

/** Atomics (and acquire/release) work on the stack, map values and ring buffer records. */
function atomicBase(env: ExploreEnv, base: Reg): void {
  if (base.kind !== "stack" && base.kind !== "map_value" && base.kind !== "ringbuf_mem") {
    fail(
      base.kind === "ctx" ? "ctx-out-of-bounds" : "invalid-mem-access",
      env.pc,
      `atomic operations on ${regTypeName(base)} are not allowed`,
    );
  }
}

/** Atomics need natural alignment everywhere (and a known offset). */
function atomicAligned(env: ExploreEnv, base: Reg, off: number, size: number): void {
  const fixed = base.off + off;
  if (!isConst(base.val) || (fixed + base.val.vLo) % size !== 0) {
    fail(
      base.kind === "stack" ? "stack-out-of-bounds" : "map-out-of-bounds",
      env.pc,
      `misaligned atomic access at offset ${fixed} size ${size}`,
    );
  }
}

/** `dst = load_acquire(src + off)`: a plain load, from memory atomics may use. */
function loadAcquire(env: ExploreEnv, st: MachineState, insn: Insn, size: number): void {
  readReg(st, insn.src, env.pc);
  if (insn.dst === 10) fail("r10-write", env.pc, "R10 is the read-only frame pointer");
  atomicBase(env, st.regs[insn.src]);
  atomicAligned(env, st.regs[insn.src], insn.off, size);
  st.regs[insn.dst] = load(env, st, insn.src, insn.off, size);
}

function execAtomic(env: ExploreEnv, st: MachineState, insn: Insn, value: Reg, size: number): void {
  const pc = env.pc;
  const base = st.regs[insn.dst];
  atomicBase(env, base);
  if (isPointer(value)) {
    fail("pointer-leak", pc, `atomic operation with a pointer (${regTypeName(value)}) as operand`);
  }
  const cmpxchg = insn.imm === op.BPF_CMPXCHG;
  if (cmpxchg) {
    const r0 = readReg(st, 0, pc);
    if (isPointer(r0)) {
      fail("pointer-leak", pc, `cmpxchg with a pointer (${regTypeName(r0)}) in R0`);
    }
  }
  atomicAligned(env, base, insn.off, size);
  const old = load(env, st, insn.dst, insn.off, size);
  if (old.kind !== "scalar") {
    fail("pointer-leak", pc, `atomic operation on a saved pointer (${regTypeName(old)})`);
  }
  store(env, st, insn.dst, insn.off, size, scalarReg(unknownOfSize(size)));
  // The fetched value is the old one: known when the stack held a known number.
  if (cmpxchg) st.regs[0] = old;
  else if (insn.imm & op.BPF_FETCH) writeReg(st, insn.src, old, pc);
}

function execLd(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): void {
  if (insn.code !== op.BPF_LDDW) return legacyPacketLoad(env, st, insn, pc);
  if (insn.dst === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
  if (insn.src === 0) {
    st.regs[insn.dst] = scalarReg(knownHalves((insn.imm2 ?? 0) | 0, insn.imm | 0));
    return;
  }
  if (insn.src === op.BPF_PSEUDO_MAP_FD) {
    const map = env.mapFor(pc, insn.imm);
    if (!map) fail("unknown-map", pc, `fd ${insn.imm} is not a map this program was given`);
    if (insn.imm2) fail("invalid-opcode", pc, "lddw of a map fd must have a zero upper immediate");
    st.regs[insn.dst] = pointerReg("map_ptr", { map });
    return;
  }
  otherLddw(env, st, insn, pc);
}

/** `lddw` of a map value address, or of what this verifier does not support. */
function otherLddw(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): void {
  switch (insn.src) {
    case op.BPF_PSEUDO_MAP_VALUE: {
      const map = env.mapFor(pc, insn.imm);
      if (!map) fail("unknown-map", pc, `fd ${insn.imm} is not a map this program was given`);
      if (map.type !== "array" || map.maxEntries !== 1) {
        fail("map-out-of-bounds", pc, `direct value access needs an array map with one entry`);
      }
      const off = (insn.imm2 ?? 0) >>> 0;
      if (off >= map.valueSize) {
        fail(
          "map-out-of-bounds",
          pc,
          `direct value offset ${off} is outside the ${map.valueSize}-byte value`,
        );
      }
      st.regs[insn.dst] = pointerReg("map_value", { map, off });
      return;
    }
    case op.BPF_PSEUDO_MAP_IDX:
    case op.BPF_PSEUDO_MAP_IDX_VALUE:
      fail("unknown-map", pc, "maps by fd_array index are not supported: load maps by fd");
      break;
    default:
      fail(
        "invalid-opcode",
        pc,
        `lddw with pseudo source ${insn.src} is not supported by this verifier`,
      );
  }
}

/** Legacy packet loads (ld_abs/ld_ind): socket filters only; R6 must hold the skb. */
function legacyPacketLoad(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): void {
  if (env.progType !== "socket_filter") {
    fail(
      "invalid-opcode",
      pc,
      `legacy packet loads (ld_abs/ld_ind) are not allowed in ${env.progType} programs`,
    );
  }
  if (st.sub !== 0) {
    // The kernel needs BTF function info for them in subprograms; we pass none.
    fail("invalid-opcode", pc, "legacy packet loads are not allowed in subprograms");
  }
  const r6 = readReg(st, 6, pc);
  if (r6.kind !== "ctx" || r6.off !== 0) {
    fail("bad-helper-arg", pc, "ld_abs/ld_ind need R6 to be the context");
  }
  if (op.bpfMode(insn.code) === op.BPF_IND) {
    const s = readReg(st, insn.src, pc);
    if (isPointer(s)) fail("pointer-leak", pc, "ld_ind with a pointer offset");
  }
  for (let r = 1; r <= 5; r++) st.regs[r] = UNINIT;
  // The kernel marks the loaded packet bytes a full unknown 64-bit value.
  st.regs[0] = UNKNOWN_SCALAR;
}

function execJump(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): number {
  const o = insn.code & 0xf0;
  switch (o) {
    case op.BPF_JA:
      return jumpTarget(
        env.program,
        pc,
        (insn.code & 0x07) === op.BPF_JMP32 ? insn.imm : insn.off,
      );
    case op.BPF_EXIT:
      if (st.frames.length !== 0) return returnFromCall(env, st, pc);
      checkExit(env, st, pc);
      return -1;
    case op.BPF_CALL:
      if (insn.src === op.BPF_PSEUDO_CALL) return callSubprog(env, st, insn, pc);
      if (insn.src !== 0) {
        fail("invalid-opcode", pc, "kfunc calls are not supported by this verifier");
      }
      execHelperCall(env, st, insn.imm);
      return pc + 1;
    case op.BPF_JCOND: {
      // may_goto: jumps once a run-time budget is spent, so both ways are possible.
      const target = jumpTarget(env.program, pc, insn.off);
      if (target === pc + 1) return target;
      env.forkPc = target;
      env.forkSt = st.clone();
      return pc + 1;
    }
  }
  return condJump(env, st, insn, pc, jumpTarget(env.program, pc, insn.off));
}

/** A bpf-to-bpf call: the callee runs in a frame of its own, with R1-R5 as arguments. */
function callSubprog(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): number {
  const target = jumpTarget(env.program, pc, insn.imm);
  const subs = env.subprogs;
  if (target < 0 || subs === undefined) fail("jump-out-of-range", pc, "bad call target");
  if (st.frames.length + 1 >= MAX_CALL_FRAMES) {
    fail("too-complex", pc, `calls nest deeper than ${MAX_CALL_FRAMES} frames`);
  }
  // What the callee reads is not tracked back to the caller's saved states: count all as read.
  if (env.marks !== undefined) {
    markRegsRead(env.marks, 0xffff);
    markSlotsRead(env.marks, -1, -1);
  }
  // Stack pointers among the arguments keep naming their frame (Reg.frame).
  st.pushFrame(pc + 1, subs.subOf[target]);
  return target;
}

/** `exit` in a subprogram: R0 goes back to the caller, which continues after its call. */
function returnFromCall(env: ExploreEnv, st: MachineState, pc: number): number {
  // R0 may stay unset (the caller then may not read it), but not point into this frame.
  const r0 = st.regs[0];
  if (r0.kind === "stack") {
    fail("bad-return-value", pc, "a subprogram cannot return a pointer to its own stack");
  }
  const frame = st.frames[st.frames.length - 1];
  for (const [id, at] of st.refs) {
    if (!frame.refs.has(id)) {
      fail(
        "unreleased-reference",
        pc,
        `the ring buffer record reserved at slot ${
          env.program.slotOf[at]
        } is neither submitted nor discarded when the subprogram returns`,
      );
    }
  }
  return st.popFrame().returnPc;
}

function checkExit(env: ExploreEnv, st: MachineState, pc: number): void {
  if (st.refs.size !== 0) unreleased(env, st, pc);
  const r0 = st.regs[0];
  if (r0.kind === "uninit") {
    fail("bad-return-value", pc, "R0 is not set at exit: the program must return a value");
  }
  if (isPointer(r0)) {
    fail("bad-return-value", pc, `R0 is a pointer (${regTypeName(r0)}) at exit: return a number`);
  }
}

function unreleased(env: ExploreEnv, st: MachineState, pc: number): void {
  for (const [id, at] of st.refs) {
    fail(
      "unreleased-reference",
      pc,
      `the ring buffer record reserved at slot ${
        env.program.slotOf[at]
      } (reference ${id}) is neither submitted nor discarded on this path`,
    );
  }
}

/** Gives the register, and every copy sharing its id, the value `val`. */
function updateLinked(st: MachineState, regNo: number, val: Scalar): void {
  const r = st.regs[regNo];
  if (r.kind !== "scalar") return;
  if (r.id === 0) st.regs[regNo] = scalarReg(val);
  else st.setLinkedScalars(r.id, val);
}

/** A conditional jump: the next pc, and a fork in env when both ways are possible. */
function condJump(
  env: ExploreEnv,
  st: MachineState,
  insn: Insn,
  pc: number,
  targetPc: number,
): number {
  const jmp32 = (insn.code & 0x07) === op.BPF_JMP32;
  const o = insn.code & 0xf0;
  const useX = (insn.code & 0x08) !== 0;
  const dst = readReg(st, insn.dst, pc);
  const src = useX ? readReg(st, insn.src, pc) : undefined;
  const srcVal = src === undefined ? immScalar(env, pc, insn.imm) : src.val;

  if (dst.kind !== "scalar" || (src !== undefined && src.kind !== "scalar")) {
    const decided = pointerBranch(dst, src ?? scalarReg(srcVal), o, jmp32);
    if (decided === 1) return targetPc;
    if (decided === 0) return pc + 1;
    const other = st.clone();
    if (
      !jmp32 && !useX && insn.imm === 0 && dst.maybeNull && (o === op.BPF_JEQ || o === op.BPF_JNE)
    ) {
      // A NULL check: one side has the pointer, the other a zero.
      const jumpIsNull = o === op.BPF_JEQ;
      markNullCheck(other, dst.id, jumpIsNull);
      markNullCheck(st, dst.id, !jumpIsNull);
    }
    env.forkPc = targetPc;
    env.forkSt = other;
    return pc + 1;
  }

  const taken = branchTaken(dst.val, srcVal, o, jmp32);
  if (taken === 1) return targetPc;
  if (taken === 0) return pc + 1;
  const other = st.clone();
  const exact = !jmp32 || jmp32IsExact(dst.val, srcVal, o);
  if (exact) {
    applyRefine(other, insn, useX, dst.val, srcVal, o);
    const neg = negateJump(o);
    if (neg >= 0) applyRefine(st, insn, useX, dst.val, srcVal, neg);
  }
  if (o === op.BPF_JSET && isConst(srcVal)) {
    // A known mask: the taken side has its bit, the other has none of them.
    const kHi = jmp32 ? 0 : srcVal.vHi, kLo = srcVal.vLo;
    const t = refineJset(dst.val, kHi, kLo, true);
    if (t) updateLinked(other, insn.dst, t);
    const f = refineJset(dst.val, kHi, kLo, false);
    if (f) updateLinked(st, insn.dst, f);
  }
  env.forkPc = targetPc;
  env.forkSt = other;
  return pc + 1;
}

/**
 * A pointer the kernel knows is not NULL compared with 0 (`reg_not_null`):
 * == is never taken, != always. Only the cases the kernel decides too.
 */
function pointerBranch(a: Reg, b: Reg, opcode: number, jmp32: boolean): 1 | 0 | -1 {
  if (jmp32 || (opcode !== op.BPF_JEQ && opcode !== op.BPF_JNE)) return -1;
  const aIsPtr = isPointer(a);
  const ptr = aIsPtr ? a : b, other = aIsPtr ? b : a;
  if (other.kind !== "scalar" || !isZero(other.val)) return -1;
  if (ptr.maybeNull) return -1;
  const notNull = ptr.kind === "map_value" || ptr.kind === "ringbuf_mem" ||
    ptr.kind === "map_ptr" ||
    (ptr.kind === "btf_id" && ptr.trusted === true);
  if (!notNull) return -1;
  return opcode === op.BPF_JNE ? 1 : 0;
}

function applyRefine(
  st: MachineState,
  insn: Insn,
  useX: boolean,
  a: Scalar,
  b: Scalar,
  opcode: number,
): void {
  const r = refine(a, b, opcode);
  if (!r) return;
  updateLinked(st, insn.dst, r[0]);
  if (useX && insn.src !== insn.dst) updateLinked(st, insn.src, r[1]);
}

/** After `if ptr == 0`: on the NULL side every copy is 0, on the other none is NULL. */
function markNullCheck(st: MachineState, id: number, isNull: boolean): void {
  if (id === 0) return;
  if (isNull) st.dropRef(id);
  st.replacePointers(id, (r) => isNull ? scalarReg(known(0)) : { ...r, maybeNull: false });
}

/** The immediate of the jump at `pc` as a scalar (made once per instruction). */
function immScalar(env: ExploreEnv, pc: number, imm: number): Scalar {
  if (imm >= 0 && imm < 256) return known(imm);
  return env.imms[pc] ??= known(imm);
}
