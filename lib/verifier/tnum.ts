/**
 * Tristate numbers ("tnums"), as the kernel's `kernel/bpf/tnum.c` defines
 * them: a value whose bits are each known-0, known-1 or unknown. `value`
 * holds the known-1 bits, `mask` the unknown ones; `value & mask` is 0.
 * All arithmetic is modulo 2^64.
 *
 * A tnum lives inside a scalar as four int32 halves (see int64.ts):
 * `vHi:vLo` is the value, `mHi:mLo` the mask. Operations read their
 * operands first and then write the result into `r`, so `r` may be one of
 * them.
 *
 * @module
 */

import { add64, clz64, R, sar64, shl64, shr64, sub64, toBigU } from "./int64.ts";

/** The tnum part of a scalar. */
export interface Tnum {
  vHi: number;
  vLo: number;
  mHi: number;
  mLo: number;
}

/** Sets r to the tnum with value v and mask m. */
function set(r: Tnum, vHi: number, vLo: number, mHi: number, mLo: number): void {
  r.vHi = vHi;
  r.vLo = vLo;
  r.mHi = mHi;
  r.mLo = mLo;
}

/** Nothing known. */
export function tnumSetUnknown(r: Tnum): void {
  set(r, 0, 0, -1, -1);
}

/** Every value in [min, max] (unsigned): the common high bits are known. */
export function tnumRange(
  r: Tnum,
  minHi: number,
  minLo: number,
  maxHi: number,
  maxLo: number,
): void {
  const bits = 64 - clz64(minHi ^ maxHi, minLo ^ maxLo);
  if (bits > 63) return tnumSetUnknown(r);
  // delta = 2^bits - 1
  const dHi = bits > 32 ? (2 ** (bits - 32) - 1) | 0 : 0;
  const dLo = bits >= 32 ? -1 : (2 ** bits - 1) | 0;
  set(r, minHi & ~dHi, minLo & ~dLo, dHi, dLo);
}

/** Is the value fully known? */
export function tnumIsConst(a: Readonly<Tnum>): boolean {
  return a.mHi === 0 && a.mLo === 0;
}

/** Shift left by a constant (0-63). */
export function tnumLshift(r: Tnum, a: Readonly<Tnum>, shift: number): void {
  const mHi = a.mHi, mLo = a.mLo;
  shl64(a.vHi, a.vLo, shift);
  const vHi = R.hi, vLo = R.lo;
  shl64(mHi, mLo, shift);
  set(r, vHi, vLo, R.hi, R.lo);
}

/** Logical shift right by a constant (0-63). */
export function tnumRshift(r: Tnum, a: Readonly<Tnum>, shift: number): void {
  const mHi = a.mHi, mLo = a.mLo;
  shr64(a.vHi, a.vLo, shift);
  const vHi = R.hi, vLo = R.lo;
  shr64(mHi, mLo, shift);
  set(r, vHi, vLo, R.hi, R.lo);
}

/** Arithmetic shift right by a constant, at a width of 32 or 64 bits. */
export function tnumArshift(r: Tnum, a: Readonly<Tnum>, shift: number, bits: 32 | 64): void {
  if (bits === 32) {
    // The low halves as signed 32-bit numbers, shifted, zero-extended.
    set(r, 0, a.vLo >> shift, 0, a.mLo >> shift);
    return;
  }
  const mHi = a.mHi, mLo = a.mLo;
  sar64(a.vHi, a.vLo, shift);
  const vHi = R.hi, vLo = R.lo;
  sar64(mHi, mLo, shift);
  set(r, vHi, vLo, R.hi, R.lo);
}

/** Sum. */
export function tnumAdd(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const amHi = a.mHi, amLo = a.mLo, bmHi = b.mHi, bmLo = b.mLo;
  add64(amHi, amLo, bmHi, bmLo);
  const smHi = R.hi, smLo = R.lo;
  add64(a.vHi, a.vLo, b.vHi, b.vLo);
  const svHi = R.hi, svLo = R.lo;
  add64(smHi, smLo, svHi, svLo); // sigma
  const muHi = (R.hi ^ svHi) | amHi | bmHi;
  const muLo = (R.lo ^ svLo) | amLo | bmLo;
  set(r, svHi & ~muHi, svLo & ~muLo, muHi, muLo);
}

/** Difference. */
export function tnumSub(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const amHi = a.mHi, amLo = a.mLo, bmHi = b.mHi, bmLo = b.mLo;
  sub64(a.vHi, a.vLo, b.vHi, b.vLo);
  const dvHi = R.hi, dvLo = R.lo;
  add64(dvHi, dvLo, amHi, amLo);
  const alphaHi = R.hi, alphaLo = R.lo;
  sub64(dvHi, dvLo, bmHi, bmLo);
  const muHi = (alphaHi ^ R.hi) | amHi | bmHi;
  const muLo = (alphaLo ^ R.lo) | amLo | bmLo;
  set(r, dvHi & ~muHi, dvLo & ~muLo, muHi, muLo);
}

/** Bitwise and. */
export function tnumAnd(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const alphaHi = a.vHi | a.mHi, alphaLo = a.vLo | a.mLo;
  const betaHi = b.vHi | b.mHi, betaLo = b.vLo | b.mLo;
  const vHi = a.vHi & b.vHi, vLo = a.vLo & b.vLo;
  set(r, vHi, vLo, alphaHi & betaHi & ~vHi, alphaLo & betaLo & ~vLo);
}

/** Bitwise or. */
export function tnumOr(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const vHi = a.vHi | b.vHi, vLo = a.vLo | b.vLo;
  const muHi = a.mHi | b.mHi, muLo = a.mLo | b.mLo;
  set(r, vHi, vLo, muHi & ~vHi, muLo & ~vLo);
}

/** Bitwise xor. */
export function tnumXor(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const vHi = a.vHi ^ b.vHi, vLo = a.vLo ^ b.vLo;
  const muHi = a.mHi | b.mHi, muLo = a.mLo | b.mLo;
  set(r, vHi & ~muHi, vLo & ~muLo, muHi, muLo);
}

/** Values both describe (assumes they overlap). */
export function tnumIntersect(r: Tnum, a: Readonly<Tnum>, b: Readonly<Tnum>): void {
  const vHi = a.vHi | b.vHi, vLo = a.vLo | b.vLo;
  const muHi = a.mHi & b.mHi, muLo = a.mLo & b.mLo;
  set(r, vHi & ~muHi, vLo & ~muLo, muHi, muLo);
}

/** Truncates to the low `bytes` bytes (1-8). */
export function tnumCast(r: Tnum, a: Readonly<Tnum>, bytes: number): void {
  if (bytes >= 8) return set(r, a.vHi, a.vLo, a.mHi, a.mLo);
  if (bytes <= 4) {
    const keep = bytes === 4 ? -1 : (2 ** (bytes * 8) - 1) | 0;
    return set(r, 0, a.vLo & keep, 0, a.mLo & keep);
  }
  const keepHi = (2 ** (bytes * 8 - 32) - 1) | 0;
  set(r, a.vHi & keepHi, a.vLo, a.mHi & keepHi, a.mLo);
}

/** Does `a` contain every value `b` describes? */
export function tnumIn(a: Readonly<Tnum>, b: Readonly<Tnum>): boolean {
  if ((b.mHi & ~a.mHi) !== 0 || (b.mLo & ~a.mLo) !== 0) return false;
  return (b.vHi & ~a.mHi) === a.vHi && (b.vLo & ~a.mLo) === a.vLo;
}

/** Equal as tnums. */
export function tnumEquals(a: Readonly<Tnum>, b: Readonly<Tnum>): boolean {
  return a.vHi === b.vHi && a.vLo === b.vLo && a.mHi === b.mHi && a.mLo === b.mLo;
}

/** The kernel's print form, e.g. `(0x0; 0xff)`. */
export function tnumToString(a: Readonly<Tnum>): string {
  const v = toBigU(a.vHi, a.vLo).toString(16);
  if (tnumIsConst(a)) return `0x${v}`;
  return `(0x${v}; 0x${toBigU(a.mHi, a.mLo).toString(16)})`;
}
