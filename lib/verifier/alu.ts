/**
 * Arithmetic on registers: numbers through the range tracker, pointers with
 * the privileged kernel's rules (`adjust_ptr_min_max_vals`): only + and - on
 * pointers, never on a pointer that may be NULL or on a map handle, no
 * subtraction from the frame pointer, offsets within +-2^29.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";
import { fail } from "./errors.ts";
import { ltS, ltU, toBigS } from "./int64.ts";
import {
  add64Scalar,
  aluOp,
  constNum,
  isConst,
  known,
  low32,
  noSignedMin,
  type Scalar,
  type ScalarOp,
  sminNum,
  sub64Scalar,
  truncate,
  unknown,
  zext32,
} from "./scalar.ts";
import { signExtend, signExtend32 } from "./sign_extend.ts";
import { byteSwap } from "./byte_swap.ts";
import {
  isPointer,
  type MachineState,
  type Reg,
  regTypeName,
  scalarReg,
  UNKNOWN_SCALAR,
} from "./state.ts";

/** Pointer offsets must stay within +-2^29 (the kernel's BPF_MAX_VAR_OFF). */
export const MAX_VAR_OFF = 1 << 29;

const OP_NAME: Record<number, ScalarOp> = {
  [op.BPF_ADD]: "add",
  [op.BPF_SUB]: "sub",
  [op.BPF_MUL]: "mul",
  [op.BPF_AND]: "and",
  [op.BPF_OR]: "or",
  [op.BPF_XOR]: "xor",
  [op.BPF_LSH]: "lsh",
  [op.BPF_RSH]: "rsh",
  [op.BPF_ARSH]: "arsh",
  [op.BPF_NEG]: "neg",
};

const OP_TEXT: Record<number, string> = {
  [op.BPF_ADD]: "+=",
  [op.BPF_SUB]: "-=",
  [op.BPF_MUL]: "*=",
  [op.BPF_DIV]: "/=",
  [op.BPF_OR]: "|=",
  [op.BPF_AND]: "&=",
  [op.BPF_LSH]: "<<=",
  [op.BPF_RSH]: ">>=",
  [op.BPF_NEG]: "neg",
  [op.BPF_MOD]: "%=",
  [op.BPF_XOR]: "^=",
  [op.BPF_ARSH]: "s>>=",
  [op.BPF_END]: "byte swap",
};

/** Context for reporting: the instruction's index and a fresh-id source. */
export interface AluEnv {
  pc: number;
  nextId(): number;
  allowPointerLeaks: boolean;
}

/** Reads a register as an operand; throws uninit-register when unset. */
export function readReg(st: MachineState, r: number, pc: number): Reg {
  const v = st.regs[r];
  if (v.kind === "uninit") fail("uninit-register", pc, `R${r} is read before it is written`);
  return v;
}

/** Writes a register; R10 is read-only. */
export function writeReg(st: MachineState, r: number, v: Reg, pc: number): void {
  if (r === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
  st.regs[r] = v;
}

function leak(env: AluEnv, why: string): void {
  if (!env.allowPointerLeaks) fail("pointer-leak", env.pc, why);
}

/** Executes an ALU or ALU64 instruction. */
export function execAlu(env: AluEnv, st: MachineState, insn: Insn): void {
  const code = insn.code;
  const w = (code & 0x07) === op.BPF_ALU64 ? 64 : 32;
  const o = code & 0xf0;
  const useX = (code & 0x08) !== 0;
  const d = insn.dst;
  const pc = env.pc;
  const regs = st.regs;

  if (o === op.BPF_MOV) {
    if (d === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");
    if (!useX) {
      regs[d] = scalarReg(w === 64 ? known(insn.imm) : known(insn.imm >>> 0));
      return;
    }
    const src = readReg(st, insn.src, pc);
    if (insn.off !== 0) return movSignExtend(env, st, insn, src, w);
    if (w === 64) {
      if (src.kind === "scalar" && !isConst(src.val)) {
        // Copies share an id so that a bound learnt on one applies to both.
        let id = src.id;
        if (id === 0) {
          id = env.nextId();
          regs[insn.src] = scalarReg(src.val, id);
        }
        regs[d] = scalarReg(src.val, id);
      } else {
        regs[d] = src;
      }
      return;
    }
    if (isPointer(src)) {
      if (!env.allowPointerLeaks) {
        leak(
          env,
          `w${d} = w${insn.src} copies the low half of a pointer (${
            regTypeName(src)
          }) into a number`,
        );
      }
      regs[d] = scalarReg(zext32(unknown(32)));
      return;
    }
    regs[d] = scalarReg(zext32(low32(src.val)));
    return;
  }

  const dst = readReg(st, d, pc);
  if (d === 10) fail("r10-write", pc, "R10 is the read-only frame pointer");

  if (o === op.BPF_NEG || o === op.BPF_END) {
    if (isPointer(dst)) {
      fail(
        "pointer-leak",
        pc,
        `${OP_TEXT[o]} on a pointer (${regTypeName(dst)}) turns it into a number`,
      );
    }
    if (o === op.BPF_END) {
      // ALU64 is bswap; ALU's source bit picks big endian (a swap here) or little.
      const swap = (insn.code & 0x07) === op.BPF_ALU64 || (insn.code & 0x08) !== 0;
      const bits = insn.imm as 16 | 32 | 64;
      regs[d] = bits === 16 || bits === 32 || bits === 64
        ? scalarReg(byteSwap(dst.val, bits, swap))
        : UNKNOWN_SCALAR;
      return;
    }
    regs[d] = scalarOp("neg", dst.val, known(0), w);
    return;
  }

  const src = useX ? readReg(st, insn.src, pc) : undefined;
  if (dst.kind === "scalar" && (src === undefined || src.kind === "scalar")) {
    const b = src === undefined ? known(insn.imm) : src.val;
    regs[d] = scalarOp(OP_NAME[o] ?? "other", dst.val, b, w);
    return;
  }
  regs[d] = pointerArith(env, insn, dst, src ?? scalarReg(known(insn.imm)), w);
}

function scalarOp(name: ScalarOp, a: Scalar, b: Scalar, w: 32 | 64): Reg {
  if (w === 64) {
    const r = aluOp(name, a, b, 64);
    return r ? scalarReg(r) : UNKNOWN_SCALAR;
  }
  const r = aluOp(name, low32(a), low32(b), 32);
  // Where the kernel gives up on a 32-bit op it forgets the upper half too.
  return r ? scalarReg(zext32(r)) : UNKNOWN_SCALAR;
}

function movSignExtend(env: AluEnv, st: MachineState, insn: Insn, src: Reg, w: 32 | 64): void {
  if (isPointer(src)) {
    fail("pointer-leak", env.pc, `sign-extending move of a pointer (${regTypeName(src)})`);
  }
  const bits = insn.off;
  // movsx32 reads the low half of its source.
  const v = w === 64 ? signExtend(src.val, bits) : signExtend32(low32ZeroExt(src.val), bits);
  st.regs[insn.dst] = scalarReg(v);
}

/** The low half of a 64-bit value, zero-extended. */
function low32ZeroExt(s: Scalar): Scalar {
  return truncate(s, 4);
}

/** Scalar id or pointer arithmetic. */
function pointerArith(env: AluEnv, insn: Insn, dst: Reg, src: Reg, w: 32 | 64): Reg {
  const pc = env.pc;
  const o = op.bpfOp(insn.code);
  const text = OP_TEXT[o] ?? "?";
  if (isPointer(dst) && isPointer(src)) {
    if (o === op.BPF_SUB) {
      // ptr - ptr: a distance, which the privileged kernel allows.
      return UNKNOWN_SCALAR;
    }
    fail("pointer-arithmetic", pc, `pointer ${text} pointer is not allowed`);
  }
  const ptr = isPointer(dst) ? dst : src;
  const offReg = isPointer(dst) ? src : dst;
  if (w === 32) {
    if (o === op.BPF_SUB) {
      leak(env, `32-bit subtraction with a pointer (${regTypeName(ptr)}) exposes its low half`);
      return UNKNOWN_SCALAR;
    }
    fail("pointer-leak", pc, `32-bit arithmetic on a pointer (${regTypeName(ptr)}) is not allowed`);
  }
  if (o === op.BPF_AND || o === op.BPF_OR || o === op.BPF_XOR) {
    fail("pointer-leak", pc, `bitwise ${text} on a pointer (${regTypeName(ptr)}) is not allowed`);
  }
  if (o !== op.BPF_ADD && o !== op.BPF_SUB) {
    fail(
      "pointer-leak",
      pc,
      `pointer arithmetic with ${text} is not allowed (${regTypeName(ptr)})`,
    );
  }
  if (o === op.BPF_SUB && !isPointer(dst)) {
    fail("pointer-leak", pc, `subtracting a pointer (${regTypeName(ptr)}) from a number`);
  }
  if (ptr.maybeNull) {
    fail("null-map-value", pc, `arithmetic on ${regTypeName(ptr)}: check it against NULL first`);
  }
  const off = offReg.val;
  const isKnown = isConst(off);
  if (
    ptr.kind === "map_ptr" && !(isKnown && off.sminHi === 0 && off.sminLo === 0 && o === op.BPF_ADD)
  ) {
    fail("pointer-arithmetic", pc, "arithmetic on a map handle (map_ptr) is not allowed");
  }
  if (ptr.kind === "opaque_mem") {
    fail("pointer-arithmetic", pc, "arithmetic on an untyped kernel pointer is not allowed");
  }
  if (o === op.BPF_SUB && ptr.kind === "stack") {
    fail(
      "pointer-arithmetic",
      pc,
      "subtraction from a stack pointer is not allowed: add a negative number",
    );
  }
  if (
    ltU(off.umaxHi, off.umaxLo, off.uminHi, off.uminLo) ||
    ltS(off.smaxHi, off.smaxLo, off.sminHi, off.sminLo)
  ) return UNKNOWN_SCALAR;
  saneOffset(pc, off, 0, ptr);
  saneOffset(pc, ptr.val, ptr.off, ptr);
  let out: Reg;
  // saneOffset bounded a known offset by +-2^29: the sum below is exact.
  const val = isKnown ? constNum(off) : 0;
  const sum = ptr.off + (o === op.BPF_ADD ? val : -val);
  if (isKnown && sum >= -0x8000_0000 && sum <= 0x7fff_ffff) {
    out = { ...ptr, off: sum | 0 }; // an int32 (kept a small integer)
  } else if (o === op.BPF_ADD) {
    out = { ...ptr, val: add64Scalar(ptr.val, off) };
  } else {
    out = { ...ptr, val: sub64Scalar(ptr.val, off) };
  }
  saneOffset(pc, out.val, out.off, ptr);
  return out;
}

/** The kernel's check_reg_sane_offset. */
function saneOffset(pc: number, v: Scalar, fixed: number, ptr: Reg): void {
  // Doubles: exact near the limit, and ordered beyond it.
  const lim = MAX_VAR_OFF;
  if (isConst(v)) {
    const x = constNum(v);
    if (x >= lim || x <= -lim) {
      const exact = toBigS(v.vHi, v.vLo);
      fail(
        "pointer-arithmetic",
        pc,
        `math between ${regTypeName(ptr)} pointer and ${exact} is not allowed`,
      );
    }
  }
  if (fixed >= MAX_VAR_OFF || fixed <= -MAX_VAR_OFF) {
    fail("pointer-arithmetic", pc, `${regTypeName(ptr)} pointer offset ${fixed} is not allowed`);
  }
  if (noSignedMin(v)) {
    fail(
      "pointer-arithmetic",
      pc,
      `math between ${
        regTypeName(ptr)
      } pointer and a number with no lower bound is not allowed: bound it first`,
    );
  }
  const smin = sminNum(v);
  if (smin >= lim || smin <= -lim) {
    fail(
      "pointer-arithmetic",
      pc,
      `value ${toBigS(v.sminHi, v.sminLo)} makes the ${regTypeName(ptr)} pointer go out of bounds`,
    );
  }
}
