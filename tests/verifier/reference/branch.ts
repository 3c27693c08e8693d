/**
 * Reference branch decisions and refinements on bigints (see
 * reference/scalar.ts): what lib/verifier/branch.ts computes on halves.
 *
 * Conditional jumps on numbers: whether a branch is certainly taken or not
 * (the kernel's `is_scalar_branch_taken`, whose rules we copy so that we never
 * skip a branch the kernel explores), and what each branch teaches about the
 * operands (`regs_refine_cond_op`, in a weaker form).
 *
 * @module
 */

import * as op from "../../../bytecode/opcodes.ts";
import { isConst, isEmpty, low32, maxS, minS, type Scalar, sync } from "./scalar.ts";
import { tnumIntersect } from "./tnum.ts";

const bmax = (a: bigint, b: bigint) => (a > b ? a : b);
const bmin = (a: bigint, b: bigint) => (a < b ? a : b);

/** Outcome of a comparison: 1 always taken, 0 never taken, -1 either. */
export type Taken = 1 | 0 | -1;

/**
 * Decides `a op b` when the ranges allow. For 32-bit jumps the operands are
 * the low halves.
 */
export function branchTaken(a64: Scalar, b64: Scalar, opcode: number, jmp32: boolean): Taken {
  const a = jmp32 ? low32(a64) : a64;
  const b = jmp32 ? low32(b64) : b64;
  const sA = jmp32 ? a : a64, sB = jmp32 ? b : b64;
  switch (opcode) {
    case op.BPF_JEQ:
    case op.BPF_JNE: {
      let r: Taken = -1;
      if (isConst(a) && isConst(b)) r = a.tnum.value === b.tnum.value ? 1 : 0;
      else if (a.umin > b.umax || a.umax < b.umin) r = 0;
      else if (sA.smin > sB.smax || sA.smax < sB.smin) r = 0;
      else if (!jmp32) {
        const a32 = low32(a64), b32 = low32(b64);
        if (a32.umin > b32.umax || a32.umax < b32.umin) r = 0;
        else if (a32.smin > b32.smax || a32.smax < b32.smin) r = 0;
      }
      if (r === -1 || opcode === op.BPF_JEQ) return r;
      return r === 1 ? 0 : 1;
    }
    case op.BPF_JSET: {
      let x = a, y = b;
      if (!isConst(y)) [x, y] = [y, x];
      if (!isConst(y)) return -1;
      if (x.tnum.value & y.tnum.value) return 1;
      if (!((x.tnum.mask | x.tnum.value) & y.tnum.value)) return 0;
      return -1;
    }
    case op.BPF_JGT:
      return a.umin > b.umax ? 1 : a.umax <= b.umin ? 0 : -1;
    case op.BPF_JGE:
      return a.umin >= b.umax ? 1 : a.umax < b.umin ? 0 : -1;
    case op.BPF_JLT:
      return a.umax < b.umin ? 1 : a.umin >= b.umax ? 0 : -1;
    case op.BPF_JLE:
      return a.umax <= b.umin ? 1 : a.umin > b.umax ? 0 : -1;
    case op.BPF_JSGT:
      return a.smin > b.smax ? 1 : a.smax <= b.smin ? 0 : -1;
    case op.BPF_JSGE:
      return a.smin >= b.smax ? 1 : a.smax < b.smin ? 0 : -1;
    case op.BPF_JSLT:
      return a.smax < b.smin ? 1 : a.smin >= b.smax ? 0 : -1;
    case op.BPF_JSLE:
      return a.smax <= b.smin ? 1 : a.smin > b.smax ? 0 : -1;
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

/**
 * Bounds of `a` and `b` given that `a op b` holds (64-bit view), or
 * undefined when nothing is learnt or the result is contradictory (then the
 * caller keeps the unrefined values, which is always safe).
 */
export function refine(a: Scalar, b: Scalar, opcode: number): [Scalar, Scalar] | undefined {
  const U = (1n << 64n) - 1n;
  let A = { ...a }, B = { ...b };
  switch (opcode) {
    case op.BPF_JEQ: {
      const umin = bmax(a.umin, b.umin), umax = bmin(a.umax, b.umax);
      const smin = bmax(a.smin, b.smin), smax = bmin(a.smax, b.smax);
      if ((a.tnum.value ^ b.tnum.value) & ~a.tnum.mask & ~b.tnum.mask) return undefined;
      const tnum = tnumIntersect(a.tnum, b.tnum);
      A = { tnum, umin, umax, smin, smax };
      B = { ...A };
      break;
    }
    case op.BPF_JGT:
      if (b.umin >= U || a.umax === 0n) return undefined;
      A.umin = bmax(a.umin, b.umin + 1n);
      B.umax = bmin(b.umax, a.umax - 1n);
      break;
    case op.BPF_JGE:
      A.umin = bmax(a.umin, b.umin);
      B.umax = bmin(b.umax, a.umax);
      break;
    case op.BPF_JLT:
      if (b.umax === 0n || a.umin >= U) return undefined;
      A.umax = bmin(a.umax, b.umax - 1n);
      B.umin = bmax(b.umin, a.umin + 1n);
      break;
    case op.BPF_JLE:
      A.umax = bmin(a.umax, b.umax);
      B.umin = bmax(b.umin, a.umin);
      break;
    case op.BPF_JSGT:
      if (b.smin >= maxS(64) || a.smax <= minS(64)) return undefined;
      A.smin = bmax(a.smin, b.smin + 1n);
      B.smax = bmin(b.smax, a.smax - 1n);
      break;
    case op.BPF_JSGE:
      A.smin = bmax(a.smin, b.smin);
      B.smax = bmin(b.smax, a.smax);
      break;
    case op.BPF_JSLT:
      if (b.smax <= minS(64) || a.smin >= maxS(64)) return undefined;
      A.smax = bmin(a.smax, b.smax - 1n);
      B.smin = bmax(b.smin, a.smin + 1n);
      break;
    case op.BPF_JSLE:
      A.smax = bmin(a.smax, b.smax);
      B.smin = bmax(b.smin, a.smin);
      break;
    default:
      return undefined;
  }
  if (isEmpty(A) || isEmpty(B)) return undefined;
  const ra = sync(A, 64), rb = sync(B, 64);
  if (isEmpty(ra) || isEmpty(rb)) return undefined;
  return [ra, rb];
}

/**
 * Can a 32-bit comparison of these operands be refined as a 64-bit one?
 * True when both values fit the 32-bit view unchanged (unsigned: below 2^32;
 * signed: within the s32 range).
 */
export function jmp32IsExact(a: Scalar, b: Scalar, opcode: number): boolean {
  const signed = opcode === op.BPF_JSGT || opcode === op.BPF_JSGE || opcode === op.BPF_JSLT ||
    opcode === op.BPF_JSLE;
  const fits = (s: Scalar) =>
    signed ? s.smin >= minS(32) && s.smax <= maxS(32) : s.umax <= 0xffff_ffffn;
  if (opcode === op.BPF_JEQ) return a.umax <= 0xffff_ffffn && b.umax <= 0xffff_ffffn;
  return fits(a) && fits(b);
}
