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
import { branchTaken, jmp32IsExact, negateJump, refine } from "./branch.ts";
import { type CallEnv, execHelperCall } from "./calls.ts";
import type { Cfg } from "./cfg.ts";
import { fail } from "./errors.ts";
import { encodingProblem } from "./isa_check.ts";
import { load, store } from "./memory.ts";
import { jumpTarget, type ProgramView } from "./program.ts";
import {
  isConst,
  isZero,
  known,
  knownHalves,
  type Scalar,
  signedRange,
  unknownOfSize,
} from "./scalar.ts";
import {
  entryState,
  isPointer,
  type MachineState,
  pointerReg,
  type Reg,
  regTypeName,
  scalarReg,
  subsumes,
  UNINIT,
  UNKNOWN_SCALAR,
} from "./state.ts";
import type { MapInfo } from "./types.ts";

/** Kernel limit on pending branches (BPF_COMPLEXITY_LIMIT_JMP_SEQ). */
const MAX_PENDING = 8192;
/** Explored states kept per instruction (older ones still prune; new ones are not added). */
const MAX_STATES_PER_INSN = 32;

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
  /** Map for an `lddw` at logical index i with fd `imm`. */
  mapFor(index: number, fd: number): MapInfo | undefined;
  /** Set by a conditional jump that goes both ways: where the other path starts. */
  forkPc: number;
  /** Its state (valid while forkPc >= 0). */
  forkSt: MachineState | undefined;
}

/**
 * A state kept at a prune point. Like the kernel, it records which registers
 * and stack slots the paths explored from it read before overwriting
 * (`readRegs`, `readSlots`); once it is complete, only those need to match
 * for another state to be pruned.
 */
interface Checkpoint {
  readonly state: MachineState;
  branches: number;
  readonly parent: Checkpoint | null;
  readRegs: number;
  /** Stack slots 0-31 and 32-63 read, as bit sets. */
  readLo: number;
  readHi: number;
  /** What the path wrote between the parent checkpoint and this one. */
  readonly wroteRegs: number;
  readonly wroteLo: number;
  readonly wroteHi: number;
  /**
   * Constant registers another state must match (see constSignature), for
   * the exact comparison while the checkpoint is in progress and for the
   * covering comparison once it is complete; -1 until computed.
   */
  exactMask: number;
  exactHash: number;
  doneMask: number;
  doneHash: number;
}

/**
 * The registers among `regs` that hold a known number in `st` (a state
 * that covers another must have the same numbers there), and a hash of
 * their values. Comparing hashes first skips most states that cannot cover
 * the current one without calling `subsumes`.
 */
function constMask(st: MachineState, regs: number): number {
  let mask = 0;
  for (let r = 0; r < 10; r++) {
    if ((regs & (1 << r)) === 0) continue;
    const v = st.regs[r];
    if (v.kind === "scalar" && v.val.mHi === 0 && v.val.mLo === 0) mask |= 1 << r;
  }
  return mask;
}

/** Hash of the known numbers in registers `mask`; NaN when one of them is not a known number. */
function constHash(st: MachineState, mask: number): number {
  let h = 0x811c9dc5;
  for (let r = 0; r < 10; r++) {
    if ((mask & (1 << r)) === 0) continue;
    const v = st.regs[r];
    if (v.kind !== "scalar" || v.val.mHi !== 0 || v.val.mLo !== 0) return NaN;
    h = Math.imul(h ^ v.val.vLo, 0x01000193) ^ v.val.vHi;
  }
  return h;
}

interface Path {
  pc: number;
  st: MachineState;
  parent: Checkpoint | null;
  /** Written since `parent` (reads of these need not be marked further up). */
  wroteRegs: number;
  wroteLo: number;
  wroteHi: number;
}

/**
 * Marks registers (bit set) as read by the path: on every checkpoint up the
 * chain until one already has the mark, or the path wrote the register
 * after it. One walk for all the registers.
 */
function markRegsRead(path: Path, regs: number): void {
  let need = regs & ~path.wroteRegs;
  for (let cp = path.parent; cp !== null && need !== 0; cp = cp.parent) {
    need &= ~cp.readRegs; // marked here means marked further up too
    cp.readRegs |= need;
    need &= ~cp.wroteRegs;
  }
}

/** Marks stack slots (bit sets for slots 0-31 and 32-63) as read, like markRegsRead. */
function markSlotsRead(path: Path, lo: number, hi: number): void {
  let needLo = lo & ~path.wroteLo, needHi = hi & ~path.wroteHi;
  for (let cp = path.parent; cp !== null && (needLo | needHi) !== 0; cp = cp.parent) {
    needLo &= ~cp.readLo;
    needHi &= ~cp.readHi;
    cp.readLo |= needLo;
    cp.readHi |= needHi;
    needLo &= ~cp.wroteLo;
    needHi &= ~cp.wroteHi;
  }
}

/** Bits from..to (inclusive, 0-31) set. */
function bitRange(from: number, to: number): number {
  return to - from === 31 ? -1 : (((1 << (to - from + 1)) - 1) << from);
}

/** Explores all paths; throws VerifyError at the first error. Returns instructions processed. */
export function explore(env: ExploreEnv): number {
  const { program, cfg } = env;
  const prunePoint = cfg.prunePoint, onCycle = env.onCycle, live = env.live;
  const uses = env.uses, defs = env.defs;
  const explored: (Checkpoint[] | undefined)[] = new Array(program.insns.length);
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
  // Stack reads and whole-slot writes reported by the memory checks.
  let active: Path = cur;
  env.slots = {
    read(from, to) {
      const lo = from < 32 ? bitRange(from, to < 32 ? to : 31) : 0;
      const hi = to >= 32 ? bitRange(from < 32 ? 0 : from - 32, to - 32) : 0;
      markSlotsRead(active, lo, hi);
    },
    write(slot) {
      if (slot < 32) active.wroteLo |= 1 << slot;
      else active.wroteHi |= 1 << (slot - 32);
    },
  };

  while (cur) {
    const pc = cur.pc;
    env.pc = pc;
    if (++processed > env.limit) {
      fail(
        env.hasLoops ? "back-edge" : "too-complex",
        pc,
        env.hasLoops
          ? `a loop is not provably bounded: still running after ${env.limit} simulated instructions`
          : `too many paths: more than ${env.limit} instructions simulated`,
      );
    }
    if (prunePoint[pc] === 1) {
      let list = explored[pc];
      if (list === undefined) list = explored[pc] = [];
      let pruned: Checkpoint | undefined;
      // The current state's hash for the last mask asked (states at one pc mostly share it).
      let hashMask = -1, curHash = 0;
      for (let i = 0; i < list.length; i++) {
        const cp = list[i];
        if (cp.branches > 0) {
          if (onCycle[pc] === 0) continue;
          if (cp.exactMask < 0) {
            cp.exactMask = constMask(cp.state, live[pc]);
            cp.exactHash = constHash(cp.state, cp.exactMask);
          }
          if (cp.exactMask !== hashMask) curHash = constHash(cur.st, hashMask = cp.exactMask);
          if (cp.exactHash !== curHash) continue;
          if (subsumes(cp.state, cur.st, live[pc], true)) {
            fail(
              "back-edge",
              pc,
              "infinite loop: the program returns here in exactly the same state",
            );
          }
          continue;
        }
        if (cp.doneMask < 0) {
          cp.doneMask = constMask(cp.state, cp.readRegs & live[pc]);
          cp.doneHash = constHash(cp.state, cp.doneMask);
        }
        if (cp.doneMask !== hashMask) curHash = constHash(cur.st, hashMask = cp.doneMask);
        if (cp.doneHash !== curHash) continue;
        if (subsumes(cp.state, cur.st, cp.readRegs & live[pc], false, cp.readLo, cp.readHi)) {
          pruned = cp;
          break;
        }
      }
      if (pruned) {
        // The pruned path would have read what the state that covers it read.
        markRegsRead(cur, pruned.readRegs);
        markSlotsRead(cur, pruned.readLo, pruned.readHi);
        finish(cur.parent);
        cur = pending.pop();
        continue;
      }
      if (list.length < MAX_STATES_PER_INSN) {
        const cp: Checkpoint = {
          state: cur.st.clone(),
          branches: 1,
          parent: cur.parent,
          readRegs: 0,
          readLo: 0,
          readHi: 0,
          wroteRegs: cur.wroteRegs,
          wroteLo: cur.wroteLo,
          wroteHi: cur.wroteHi,
          exactMask: -1,
          exactHash: 0,
          doneMask: -1,
          doneHash: 0,
        };
        list.push(cp);
        cur.parent = cp;
        cur.wroteRegs = 0;
        cur.wroteLo = 0;
        cur.wroteHi = 0;
      }
    }
    active = cur;
    if ((uses[pc] & ~cur.wroteRegs) !== 0) markRegsRead(cur, uses[pc]);
    env.forkPc = -1;
    const next = step(env, cur);
    cur.wroteRegs |= defs[pc];
    if (next < 0) {
      finish(cur.parent);
      cur = pending.pop();
      continue;
    }
    if (env.forkPc >= 0) {
      if (cur.parent) cur.parent.branches++;
      pending.push({
        pc: env.forkPc,
        st: env.forkSt!,
        parent: cur.parent,
        wroteRegs: cur.wroteRegs,
        wroteLo: cur.wroteLo,
        wroteHi: cur.wroteHi,
      });
      env.forkSt = undefined;
      if (pending.length > MAX_PENDING) {
        fail(
          env.hasLoops ? "back-edge" : "too-complex",
          pc,
          `more than ${MAX_PENDING} pending branches: ${
            env.hasLoops ? "the loop is too long to verify" : "too many paths"
          }`,
        );
      }
    }
    cur.pc = next;
  }
  return processed;
}

/** A path ended: checkpoints whose paths are all explored become complete. */
function finish(cp: Checkpoint | null): void {
  for (let c = cp; c !== null; c = c.parent) {
    if (--c.branches > 0) break;
  }
}

/** Simulates one instruction; returns the next pc, or -1 at exit (a fork is left in env). */
function step(env: ExploreEnv, path: Path): number {
  const p = env.program;
  const pc = path.pc;
  const insn = p.insns[pc];
  if (env.fieldsChecked[pc] === 0) {
    // Reserved fields are checked when a path first gets here, as the kernel does.
    const why = encodingProblem(insn);
    if (why) fail("invalid-opcode", pc, why);
    env.fieldsChecked[pc] = 1;
  }
  const st = path.st;
  switch (insn.code & 0x07) {
    case op.BPF_ALU:
    case op.BPF_ALU64:
      execAlu(env, st, insn);
      return pc + 1;
    case op.BPF_LDX:
      execLoad(env, st, insn);
      return pc + 1;
    case op.BPF_ST:
    case op.BPF_STX:
      execStore(env, st, insn);
      return pc + 1;
    case op.BPF_LD:
      execLd(env, st, insn, pc);
      return pc + 1;
    default:
      return execJump(env, st, insn, pc);
  }
}

/** Bytes per access, indexed by the size bits >> 3 (W, H, B, DW). */
const SIZE_BYTES = [4, 2, 1, 8];

function sizeBytes(code: number): number {
  return SIZE_BYTES[op.bpfSize(code) >> 3];
}

function execLoad(env: ExploreEnv, st: MachineState, insn: Insn): void {
  const pc = env.pc;
  readReg(st, insn.src, pc);
  if (insn.dst === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
  const size = sizeBytes(insn.code);
  const sx = op.bpfMode(insn.code) === op.BPF_MEMSX;
  const base = st.regs[insn.src];
  if (sx && base.kind !== "stack" && base.kind !== "map_value" && base.kind !== "ringbuf_mem") {
    fail(
      "invalid-mem-access",
      pc,
      `sign-extending loads from ${regTypeName(base)} are not supported`,
    );
  }
  let v = load(env, st, insn.src, insn.off, size);
  if (sx && v.kind === "scalar") {
    const half = 2 ** (size * 8 - 1);
    v = isZero(v.val) ? scalarReg(known(0)) : scalarReg(signedRange(-half, half - 1));
  }
  st.regs[insn.dst] = v;
}

function execStore(env: ExploreEnv, st: MachineState, insn: Insn): void {
  const pc = env.pc;
  const size = sizeBytes(insn.code);
  if (op.bpfClass(insn.code) === op.BPF_ST) {
    readReg(st, insn.dst, pc);
    store(env, st, insn.dst, insn.off, size, { imm: insn.imm });
    return;
  }
  const value = readReg(st, insn.src, pc);
  readReg(st, insn.dst, pc);
  if (op.bpfMode(insn.code) === op.BPF_ATOMIC) return execAtomic(env, st, insn, value, size);
  store(env, st, insn.dst, insn.off, size, { reg: value });
}

function execAtomic(env: ExploreEnv, st: MachineState, insn: Insn, value: Reg, size: number): void {
  const pc = env.pc;
  const base = st.regs[insn.dst];
  if (base.kind !== "stack" && base.kind !== "map_value" && base.kind !== "ringbuf_mem") {
    fail(
      base.kind === "ctx" ? "ctx-out-of-bounds" : "invalid-mem-access",
      pc,
      `atomic operations on ${regTypeName(base)} are not allowed`,
    );
  }
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
  // Atomics need natural alignment everywhere.
  const fixed = base.off + insn.off;
  if (!isConst(base.val) || (fixed + (base.val.vLo | 0)) % size !== 0) {
    fail(
      base.kind === "stack" ? "stack-out-of-bounds" : "map-out-of-bounds",
      pc,
      `misaligned atomic access at offset ${fixed} size ${size}`,
    );
  }
  const old = load(env, st, insn.dst, insn.off, size);
  if (old.kind !== "scalar") {
    fail("pointer-leak", pc, `atomic operation on a saved pointer (${regTypeName(old)})`);
  }
  store(env, st, insn.dst, insn.off, size, { reg: scalarReg(unknownOfSize(size)) });
  const fetched = scalarReg(unknownOfSize(size));
  if (cmpxchg) st.regs[0] = fetched;
  else if (insn.imm & op.BPF_FETCH) writeReg(st, insn.src, fetched, pc);
}

function execLd(env: ExploreEnv, st: MachineState, insn: Insn, pc: number): void {
  if (insn.code === op.BPF_LDDW) {
    if (insn.dst === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
    switch (insn.src) {
      case 0: {
        st.regs[insn.dst] = scalarReg(knownHalves((insn.imm2 ?? 0) | 0, insn.imm >>> 0));
        return;
      }
      case op.BPF_PSEUDO_MAP_FD:
      case op.BPF_PSEUDO_MAP_VALUE: {
        const map = env.mapFor(pc, insn.imm);
        if (!map) fail("unknown-map", pc, `fd ${insn.imm} is not a map this program was given`);
        if (insn.src === op.BPF_PSEUDO_MAP_FD) {
          if (insn.imm2) {
            fail("invalid-opcode", pc, "lddw of a map fd must have a zero upper immediate");
          }
          st.regs[insn.dst] = pointerReg("map_ptr", { map });
          return;
        }
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
  // Legacy packet loads: socket filters only; R6 must hold the skb.
  if (env.progType !== "socket_filter") {
    fail(
      "invalid-opcode",
      pc,
      `legacy packet loads (ld_abs/ld_ind) are not allowed in ${env.progType} programs`,
    );
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
  const p = env.program;
  const cls = op.bpfClass(insn.code);
  const o = op.bpfOp(insn.code);
  const target = (off: number) => jumpTarget(p, pc, off);
  switch (o) {
    case op.BPF_JA:
      return target(cls === op.BPF_JMP32 ? insn.imm : insn.off);
    case op.BPF_EXIT:
      checkExit(env, st, pc);
      return -1;
    case op.BPF_CALL:
      if (insn.src !== 0) {
        fail(
          "invalid-opcode",
          pc,
          insn.src === op.BPF_PSEUDO_CALL
            ? "bpf-to-bpf calls are not supported by this verifier"
            : "kfunc calls are not supported by this verifier",
        );
      }
      execHelperCall(env, st, insn.imm);
      return pc + 1;
    case op.BPF_JCOND:
      return fail("invalid-opcode", pc, "may_goto is not supported by this verifier");
  }
  return condJump(env, st, insn, pc, target(insn.off));
}

function checkExit(env: ExploreEnv, st: MachineState, pc: number): void {
  for (const [id, at] of st.refs) {
    fail(
      "unreleased-reference",
      pc,
      `the ring buffer record reserved at slot ${
        env.program.slotOf[at]
      } (reference ${id}) is neither submitted nor discarded on this path`,
    );
  }
  const r0 = st.regs[0];
  if (r0.kind === "uninit") {
    fail("bad-return-value", pc, "R0 is not set at exit: the program must return a value");
  }
  if (isPointer(r0)) {
    fail("bad-return-value", pc, `R0 is a pointer (${regTypeName(r0)}) at exit: return a number`);
  }
}

/** Applies `fn` to the register and to every copy sharing its id. */
function updateLinked(st: MachineState, regNo: number, val: Scalar): void {
  const r = st.regs[regNo];
  if (r.kind !== "scalar") return;
  if (r.id === 0) {
    st.regs[regNo] = { ...r, val };
    return;
  }
  const id = r.id;
  st.forEachValue((x) => (x.kind === "scalar" && x.id === id ? { ...x, val } : x));
}

/** A conditional jump: the next pc, and a fork in env when both ways are possible. */
function condJump(
  env: ExploreEnv,
  st: MachineState,
  insn: Insn,
  pc: number,
  targetPc: number,
): number {
  const jmp32 = op.bpfClass(insn.code) === op.BPF_JMP32;
  const o = op.bpfOp(insn.code);
  const useX = op.bpfSrc(insn.code) === op.BPF_X;
  const dst = readReg(st, insn.dst, pc);
  const src: Reg = useX ? readReg(st, insn.src, pc) : scalarReg(known(insn.imm));

  if (isPointer(dst) || isPointer(src)) {
    const decided = pointerBranch(dst, src, o, jmp32);
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

  const taken = branchTaken(dst.val, src.val, o, jmp32);
  if (taken === 1) return targetPc;
  if (taken === 0) return pc + 1;
  const other = st.clone();
  const exact = !jmp32 || jmp32IsExact(dst.val, src.val, o);
  if (exact) {
    applyRefine(other, insn, useX, dst.val, src.val, o);
    const neg = negateJump(o);
    if (neg >= 0) applyRefine(st, insn, useX, dst.val, src.val, neg);
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
  const [ptr, other] = isPointer(a) ? [a, b] : [b, a];
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
  st.forEachValue((r) => {
    if (r.id !== id || !isPointer(r)) return r;
    return isNull ? scalarReg(known(0)) : { ...r, maybeNull: false };
  });
}
