/**
 * Conditional jumps on numbers: whether a branch is certainly taken or not
 * (the kernel's `is_scalar_branch_taken`, whose rules we copy so that we never
 * skip a branch the kernel explores), and what each branch teaches about the
 * operands (`regs_refine_cond_op`, in a weaker form).
 *
 * @module
 */

import * as op from "../../bytecode/opcodes.ts";
import { add64, leS, leU, ltS, ltU, R, SIGN, sub64 } from "./int64.ts";
import { isConst, isEmpty, low32, type Scalar, scalarCopy, sync } from "./scalar.ts";
import { tnumIntersect } from "./tnum.ts";

/** Outcome of a comparison: 1 always taken, 0 never taken, -1 either. */
export type Taken = 1 | 0 | -1;

/** a.umin > b.umax */
function uAbove(a: Scalar, b: Scalar): boolean {
  return ltU(b.umaxHi, b.umaxLo, a.uminHi, a.uminLo);
}

/** a.smin > b.smax */
function sAbove(a: Scalar, b: Scalar): boolean {
  return ltS(b.smaxHi, b.smaxLo, a.sminHi, a.sminLo);
}

/**
 * Decides `a op b` when the ranges allow. For 32-bit jumps the operands are
 * the low halves.
 */
export function branchTaken(a64: Scalar, b64: Scalar, opcode: number, jmp32: boolean): Taken {
  const a = jmp32 ? low32(a64) : a64;
  const b = jmp32 ? low32(b64) : b64;
  switch (opcode) {
    case op.BPF_JEQ:
    case op.BPF_JNE: {
      let r: Taken = -1;
      if (isConst(a) && isConst(b)) r = a.vHi === b.vHi && a.vLo === b.vLo ? 1 : 0;
      else if (uAbove(a, b) || uAbove(b, a)) r = 0;
      else if (sAbove(a, b) || sAbove(b, a)) r = 0;
      else if (!jmp32) {
        const a32 = low32(a64), b32 = low32(b64);
        if (uAbove(a32, b32) || uAbove(b32, a32)) r = 0;
        else if (sAbove(a32, b32) || sAbove(b32, a32)) r = 0;
      }
      if (r === -1 || opcode === op.BPF_JEQ) return r;
      return r === 1 ? 0 : 1;
    }
    case op.BPF_JSET: {
      let x = a, y = b;
      if (!isConst(y)) {
        x = b;
        y = a;
      }
      if (!isConst(y)) return -1;
      if ((x.vHi & y.vHi) !== 0 || (x.vLo & y.vLo) !== 0) return 1;
      if (((x.mHi | x.vHi) & y.vHi) === 0 && ((x.mLo | x.vLo) & y.vLo) === 0) return 0;
      return -1;
    }
    // a.umin vs b.umax and a.umax vs b.umin
    case op.BPF_JGT:
      return uAbove(a, b) ? 1 : leU(a.umaxHi, a.umaxLo, b.uminHi, b.uminLo) ? 0 : -1;
    case op.BPF_JGE:
      return leU(b.umaxHi, b.umaxLo, a.uminHi, a.uminLo) ? 1 : uAbove(b, a) ? 0 : -1;
    case op.BPF_JLT:
      return uAbove(b, a) ? 1 : leU(b.umaxHi, b.umaxLo, a.uminHi, a.uminLo) ? 0 : -1;
    case op.BPF_JLE:
      return leU(a.umaxHi, a.umaxLo, b.uminHi, b.uminLo) ? 1 : uAbove(a, b) ? 0 : -1;
    case op.BPF_JSGT:
      return sAbove(a, b) ? 1 : leS(a.smaxHi, a.smaxLo, b.sminHi, b.sminLo) ? 0 : -1;
    case op.BPF_JSGE:
      return leS(b.smaxHi, b.smaxLo, a.sminHi, a.sminLo) ? 1 : sAbove(b, a) ? 0 : -1;
    case op.BPF_JSLT:
      return sAbove(b, a) ? 1 : leS(b.smaxHi, b.smaxLo, a.sminHi, a.sminLo) ? 0 : -1;
    case op.BPF_JSLE:
      return leS(a.smaxHi, a.smaxLo, b.sminHi, b.sminLo) ? 1 : sAbove(a, b) ? 0 : -1;
  }
  return -1;
}

/** The opposite comparison (what holds when the jump is not taken). */
export function negateJump(opcode: number): number {
  switch (opcode) {
    case op.BPF_JEQ:
      return op.BPF_JNE;
    case op.BPF_JNE:
      return op.BPF_JEQ;
    case op.BPF_JGT:
      return op.BPF_JLE;
    case op.BPF_JLE:
      return op.BPF_JGT;
    case op.BPF_JGE:
      return op.BPF_JLT;
    case op.BPF_JLT:
      return op.BPF_JGE;
    case op.BPF_JSGT:
      return op.BPF_JSLE;
    case op.BPF_JSLE:
      return op.BPF_JSGT;
    case op.BPF_JSGE:
      return op.BPF_JSLT;
    case op.BPF_JSLT:
      return op.BPF_JSGE;
  }
  return -1; // jset has no negation we refine on
}

type Mut = { -readonly [K in keyof Scalar]: number };

/*
 * The four bound updates below write the 64-bit comparisons out (see
 * int64.ts): refine runs at every undecided branch, while V8 is cold.
 */

/** A.umin = max(A.umin, x) */
function raiseUmin(A: Mut, xHi: number, xLo: number): void {
  if (A.uminHi !== xHi ? (A.uminHi ^ SIGN) < (xHi ^ SIGN) : (A.uminLo ^ SIGN) < (xLo ^ SIGN)) {
    A.uminHi = xHi;
    A.uminLo = xLo;
  }
}

/** A.umax = min(A.umax, x) */
function lowerUmax(A: Mut, xHi: number, xLo: number): void {
  if (xHi !== A.umaxHi ? (xHi ^ SIGN) < (A.umaxHi ^ SIGN) : (xLo ^ SIGN) < (A.umaxLo ^ SIGN)) {
    A.umaxHi = xHi;
    A.umaxLo = xLo;
  }
}

/** A.smin = max(A.smin, x) */
function raiseSmin(A: Mut, xHi: number, xLo: number): void {
  if (A.sminHi !== xHi ? A.sminHi < xHi : (A.sminLo ^ SIGN) < (xLo ^ SIGN)) {
    A.sminHi = xHi;
    A.sminLo = xLo;
  }
}

/** A.smax = min(A.smax, x) */
function lowerSmax(A: Mut, xHi: number, xLo: number): void {
  if (xHi !== A.smaxHi ? xHi < A.smaxHi : (xLo ^ SIGN) < (A.smaxLo ^ SIGN)) {
    A.smaxHi = xHi;
    A.smaxLo = xLo;
  }
}

/**
 * Bounds of `a` and `b` given that `a op b` holds (64-bit view), or
 * undefined when nothing is learnt or the result is contradictory (then the
 * caller keeps the unrefined values, which is always safe).
 */
export function refine(a: Scalar, b: Scalar, opcode: number): [Scalar, Scalar] | undefined {
  const A = scalarCopy(a);
  let B = scalarCopy(b);
  switch (opcode) {
    case op.BPF_JEQ: {
      if (((a.vHi ^ b.vHi) & ~a.mHi & ~b.mHi) !== 0) return undefined;
      if (((a.vLo ^ b.vLo) & ~a.mLo & ~b.mLo) !== 0) return undefined;
      raiseUmin(A, b.uminHi, b.uminLo);
      lowerUmax(A, b.umaxHi, b.umaxLo);
      raiseSmin(A, b.sminHi, b.sminLo);
      lowerSmax(A, b.smaxHi, b.smaxLo);
      tnumIntersect(A, a, b);
      B = scalarCopy(A);
      break;
    }
    case op.BPF_JGT:
      // b.umin >= U64_MAX or a.umax === 0: nothing to learn
      if ((b.uminHi === -1 && b.uminLo === -1) || (a.umaxHi === 0 && a.umaxLo === 0)) {
        return undefined;
      }
      add64(b.uminHi, b.uminLo, 0, 1);
      raiseUmin(A, R.hi, R.lo);
      sub64(a.umaxHi, a.umaxLo, 0, 1);
      lowerUmax(B, R.hi, R.lo);
      break;
    case op.BPF_JGE:
      raiseUmin(A, b.uminHi, b.uminLo);
      lowerUmax(B, a.umaxHi, a.umaxLo);
      break;
    case op.BPF_JLT:
      if ((b.umaxHi === 0 && b.umaxLo === 0) || (a.uminHi === -1 && a.uminLo === -1)) {
        return undefined;
      }
      sub64(b.umaxHi, b.umaxLo, 0, 1);
      lowerUmax(A, R.hi, R.lo);
      add64(a.uminHi, a.uminLo, 0, 1);
      raiseUmin(B, R.hi, R.lo);
      break;
    case op.BPF_JLE:
      lowerUmax(A, b.umaxHi, b.umaxLo);
      raiseUmin(B, a.uminHi, a.uminLo);
      break;
    case op.BPF_JSGT:
      // b.smin >= S64_MAX or a.smax <= S64_MIN: nothing to learn
      if ((b.sminHi === 0x7fff_ffff && b.sminLo === -1) || isS64Min(a.smaxHi, a.smaxLo)) {
        return undefined;
      }
      add64(b.sminHi, b.sminLo, 0, 1);
      raiseSmin(A, R.hi, R.lo);
      sub64(a.smaxHi, a.smaxLo, 0, 1);
      lowerSmax(B, R.hi, R.lo);
      break;
    case op.BPF_JSGE:
      raiseSmin(A, b.sminHi, b.sminLo);
      lowerSmax(B, a.smaxHi, a.smaxLo);
      break;
    case op.BPF_JSLT:
      if (isS64Min(b.smaxHi, b.smaxLo) || (a.sminHi === 0x7fff_ffff && a.sminLo === -1)) {
        return undefined;
      }
      sub64(b.smaxHi, b.smaxLo, 0, 1);
      lowerSmax(A, R.hi, R.lo);
      add64(a.sminHi, a.sminLo, 0, 1);
      raiseSmin(B, R.hi, R.lo);
      break;
    case op.BPF_JSLE:
      lowerSmax(A, b.smaxHi, b.smaxLo);
      raiseSmin(B, a.sminHi, a.sminLo);
      break;
    default:
      return undefined;
  }
  if (isEmpty(A) || isEmpty(B)) return undefined;
  // A constant operand that is still consistent is unchanged (bounds only
  // shrink, and a constant's are a single point): no need to sync it.
  const ra = isConst(a) ? a : sync(A, 64), rb = isConst(b) ? b : sync(B, 64);
  if (isEmpty(ra) || isEmpty(rb)) return undefined;
  return [ra, rb];
}

function isS64Min(hi: number, lo: number): boolean {
  return hi === -0x8000_0000 && lo === 0;
}

/**
 * Can a 32-bit comparison of these operands be refined as a 64-bit one?
 * True when both values fit the 32-bit view unchanged (unsigned: below 2^32;
 * signed: within the s32 range).
 */
export function jmp32IsExact(a: Scalar, b: Scalar, opcode: number): boolean {
  if (opcode === op.BPF_JEQ) return a.umaxHi === 0 && b.umaxHi === 0;
  const signed = opcode === op.BPF_JSGT || opcode === op.BPF_JSGE || opcode === op.BPF_JSLT ||
    opcode === op.BPF_JSLE;
  const fits = (s: Scalar) =>
    signed
      ? leS(-1, -0x8000_0000, s.sminHi, s.sminLo) && leS(s.smaxHi, s.smaxLo, 0, 0x7fff_ffff)
      : s.umaxHi === 0;
  return fits(a) && fits(b);
}

/**
 * What `if a & k` teaches when k is known (the kernel's regs_refine_cond_op
 * for BPF_JSET): not taken, the bits of k are clear in a; taken with a
 * single-bit k, that bit is set. For 32-bit jumps k's high half is 0.
 * Undefined when nothing is learnt or the bounds contradict.
 */
export function refineJset(
  a: Scalar,
  kHi: number,
  kLo: number,
  taken: boolean,
): Scalar | undefined {
  const A = scalarCopy(a);
  if (!taken) {
    A.vHi &= ~kHi;
    A.mHi &= ~kHi;
    A.vLo &= ~kLo;
    A.mLo &= ~kLo;
  } else {
    const single = (kHi === 0 && kLo !== 0 && (kLo & (kLo - 1)) === 0) ||
      (kLo === 0 && kHi !== 0 && (kHi & (kHi - 1)) === 0);
    if (!single) return undefined;
    A.vHi |= kHi;
    A.mHi &= ~kHi;
    A.vLo |= kLo;
    A.mLo &= ~kLo;
  }
  const r = sync(A, 64);
  return isEmpty(r) ? undefined : r;
}
