/**
 * Numbers as the verifier sees them: a tnum plus unsigned and signed bounds,
 * kept in sync the way the kernel's `reg_bounds_sync` does.
 *
 * Soundness rule for this file: every transfer function must be at most as
 * precise as the kernel's. If ours knew more than the kernel about a value,
 * we could accept an access the kernel rejects. So where kernel versions
 * differ we follow the less precise one, and where in doubt we answer
 * "unknown".
 *
 * Operations work at a width of 64 bits, or 32 bits for the ALU32 class
 * (on the low halves, then zero-extended).
 *
 * Every 64-bit quantity is stored as two 32-bit halves (see int64.ts), so
 * that the arithmetic stays on plain numbers; tests/verifier/reference holds
 * the same operations on bigints, and the tests check that both agree.
 *
 * @module
 */

import {
  add64,
  fromBig,
  leS,
  leU,
  ltU,
  R,
  sar64,
  shl64,
  shr64,
  SIGN,
  sub64,
  toBigS,
  toBigU,
  toNumS,
  toNumU,
  TWO32,
} from "./int64.ts";
import {
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumCast,
  tnumLshift,
  tnumOr,
  tnumRshift,
  tnumSetUnknown,
  tnumSub,
  tnumToString,
  tnumXor,
} from "./tnum.ts";

/** Width of an operation in bits. */
export type Width = 32 | 64;

/**
 * A set of numbers: all values x with the tnum (`vHi:vLo` known-1 bits,
 * `mHi:mLo` unknown bits) matching, `umin <= x <= umax` unsigned and
 * `smin <= x <= smax` signed (at the scalar's width). Each bound is a pair
 * of int32 halves (see int64.ts). A 32-bit scalar has its unsigned values
 * zero-extended and its signed bounds sign-extended.
 *
 * Shared and immutable once made: never change a Scalar in place.
 */
export interface Scalar extends Readonly<Tnum> {
  readonly uminHi: number;
  readonly uminLo: number;
  readonly umaxHi: number;
  readonly umaxLo: number;
  readonly sminHi: number;
  readonly sminLo: number;
  readonly smaxHi: number;
  readonly smaxLo: number;
}

/** A scalar being computed (only by the function that made it). */
type Mut = { -readonly [K in keyof Scalar]: number };

/** A fresh all-zero scalar: one object literal, so every scalar has one shape. */
function blank(): Mut {
  return {
    vHi: 0,
    vLo: 0,
    mHi: 0,
    mLo: 0,
    uminHi: 0,
    uminLo: 0,
    umaxHi: 0,
    umaxLo: 0,
    sminHi: 0,
    sminLo: 0,
    smaxHi: 0,
    smaxLo: 0,
  };
}

/** A copy that the caller may change (before sharing it). */
export function scalarCopy(s: Scalar): { -readonly [K in keyof Scalar]: number } {
  return copy(s);
}

function copy(s: Scalar): Mut {
  const r = blank();
  r.vHi = s.vHi;
  r.vLo = s.vLo;
  r.mHi = s.mHi;
  r.mLo = s.mLo;
  r.uminHi = s.uminHi;
  r.uminLo = s.uminLo;
  r.umaxHi = s.umaxHi;
  r.umaxLo = s.umaxLo;
  r.sminHi = s.sminHi;
  r.sminLo = s.sminLo;
  r.smaxHi = s.smaxHi;
  r.smaxLo = s.smaxLo;
  return r;
}

const S64_MIN_HI = -0x8000_0000, S64_MAX_HI = 0x7fff_ffff;

function setU(r: Mut, minHi: number, minLo: number, maxHi: number, maxLo: number): void {
  r.uminHi = minHi;
  r.uminLo = minLo;
  r.umaxHi = maxHi;
  r.umaxLo = maxLo;
}

function setS(r: Mut, minHi: number, minLo: number, maxHi: number, maxLo: number): void {
  r.sminHi = minHi;
  r.sminLo = minLo;
  r.smaxHi = maxHi;
  r.smaxLo = maxLo;
}

/** Unsigned bounds: everything at width w. */
function fullU(r: Mut, w: Width): void {
  setU(r, 0, 0, w === 64 ? -1 : 0, -1);
}

/** Signed bounds: everything at width w. */
function fullS(r: Mut, w: Width): void {
  if (w === 64) setS(r, S64_MIN_HI, 0, S64_MAX_HI, -1);
  else setS(r, -1, SIGN, 0, 0x7fff_ffff);
}

/** Does the signed value (a 64-bit pair) fit the signed range of width w? */
function fitsS(hi: number, lo: number, w: Width): boolean {
  return w === 64 || hi === lo >> 31;
}

/** The high half of a value seen as signed at width w (w = 32 sign-extends the low half). */
function hiS(hi: number, lo: number, w: Width): number {
  return w === 64 ? hi : lo >> 31;
}

/** The high half of a value seen as unsigned at width w. */
function hiU(hi: number, w: Width): number {
  return w === 64 ? hi : 0;
}

const UNKNOWN_64: Scalar = (() => {
  const r = blank();
  tnumSetUnknown(r);
  fullU(r, 64);
  fullS(r, 64);
  return r;
})();
const UNKNOWN_32: Scalar = (() => {
  const r = blank();
  r.mLo = -1;
  fullU(r, 32);
  fullS(r, 32);
  return r;
})();

/** Anything at all (at width w). */
export function unknown(w: Width = 64): Scalar {
  return w === 64 ? UNKNOWN_64 : UNKNOWN_32;
}

function makeKnown(hi: number, lo: number, w: Width): Scalar {
  const r = blank();
  const uHi = hiU(hi, w), sHi = hiS(hi, lo, w);
  r.vHi = uHi;
  r.vLo = lo;
  setU(r, uHi, lo, uHi, lo);
  setS(r, sHi, lo, sHi, lo);
  return r;
}

/** Small constants are shared: programs use them all the time. */
const SMALL: Scalar[] = [];
for (let i = 0; i < 256; i++) SMALL.push(makeKnown(0, i, 64));

/** For the shared constants 0-255 (see `known`): the value; otherwise -1. */
export function sharedConstIndex(s: Scalar): number {
  const v = s.vLo;
  return v >= 0 && v < 256 && SMALL[v] === s ? v : -1;
}

/** Exactly the 64-bit value hi:lo, taken modulo 2^w. */
export function knownHalves(hi: number, lo: number, w: Width = 64): Scalar {
  if (lo >= 0 && lo < 256 && (hi === 0 || w === 32)) return SMALL[lo];
  return makeKnown(hi, lo, w);
}

/** Exactly `x`, a safe integer (negative numbers as their two's complement), modulo 2^w. */
export function known(x: number, w: Width = 64): Scalar {
  if (x >= 0 && x < 256) return SMALL[x];
  return knownHalves(Math.floor(x / TWO32) | 0, x | 0, w);
}

const OF_SIZE: Scalar[] = [1, 2, 3, 4, 5, 6, 7].map((bytes) => {
  const r = blank();
  // `| 0`: field values must be small integers (see int64.ts), never doubles.
  const maxHi = bytes > 4 ? (2 ** (bytes * 8 - 32) - 1) | 0 : 0;
  const maxLo = bytes >= 4 ? -1 : (2 ** (bytes * 8) - 1) | 0;
  r.mHi = maxHi;
  r.mLo = maxLo;
  setU(r, 0, 0, maxHi, maxLo);
  setS(r, 0, 0, maxHi, maxLo);
  return r;
});

/** Any value of `bytes` bytes, zero-extended: [0, 2^(8*bytes) - 1]. */
export function unknownOfSize(bytes: number): Scalar {
  return bytes >= 8 ? UNKNOWN_64 : OF_SIZE[bytes - 1];
}

/** Every value in [lo, hi] (safe integers) when read as signed numbers at width w. */
export function signedRange(lo: number, hi: number, w: Width = 64): Scalar {
  const r = copy(unknown(w));
  setS(r, Math.floor(lo / TWO32) | 0, lo | 0, Math.floor(hi / TWO32) | 0, hi | 0);
  syncInPlace(r, w);
  return r;
}

/** Is it a single known value? */
export function isConst(s: Scalar): boolean {
  return s.mHi === 0 && s.mLo === 0;
}

/** Is it known to be 0? */
export function isZero(s: Scalar): boolean {
  return s.mHi === 0 && s.mLo === 0 && s.vHi === 0 && s.vLo === 0;
}

/** The single value read as signed, as a double (assuming isConst; exact within 2^53). */
export function constNum(s: Scalar): number {
  return toNumS(s.vHi, s.vLo);
}

/** The single value read as unsigned, as a double (assuming isConst). */
export function constNumU(s: Scalar): number {
  return toNumU(s.vHi, s.vLo);
}

/** The single value (unsigned), as a bigint, assuming isConst. */
export function constValue(s: Scalar): bigint {
  return toBigU(s.vHi, s.vLo);
}

/** Bounds as doubles: exact within 2^53, and ordered beyond (so comparing them with small numbers is exact). */
export function sminNum(s: Scalar): number {
  return toNumS(s.sminHi, s.sminLo);
}
/** See sminNum. */
export function smaxNum(s: Scalar): number {
  return toNumS(s.smaxHi, s.smaxLo);
}
/** See sminNum. */
export function uminNum(s: Scalar): number {
  return toNumU(s.uminHi, s.uminLo);
}
/** See sminNum. */
export function umaxNum(s: Scalar): number {
  return toNumU(s.umaxHi, s.umaxLo);
}

/** Is the lower signed bound the smallest 64-bit number (no lower bound at all)? */
export function noSignedMin(s: Scalar): boolean {
  return s.sminHi === S64_MIN_HI && s.sminLo === 0;
}

/** True when no value satisfies all the bounds (an impossible branch). */
export function isEmpty(s: Scalar): boolean {
  // umax < umin (unsigned), or smax < smin (signed), or a bit both known-1 and unknown
  const uminHi = s.uminHi, umaxHi = s.umaxHi, sminHi = s.sminHi, smaxHi = s.smaxHi;
  if (
    umaxHi !== uminHi ? (umaxHi ^ SIGN) < (uminHi ^ SIGN) : (s.umaxLo ^ SIGN) < (s.uminLo ^ SIGN)
  ) return true;
  if (smaxHi !== sminHi ? smaxHi < sminHi : (s.smaxLo ^ SIGN) < (s.sminLo ^ SIGN)) return true;
  return (s.vHi & s.mHi) !== 0 || (s.vLo & s.mLo) !== 0;
}

/**
 * Tightens bounds against each other and the tnum (the kernel's
 * `__update_reg_bounds`, the older `__reg_deduce_bounds`, `__reg_bound_offset`).
 */
export function sync(s: Scalar, w: Width): Scalar {
  const r = copy(s);
  syncInPlace(r, w);
  return r;
}

/*
 * syncInPlace is the verifier's hottest arithmetic, run while V8 is still
 * interpreting: it works on local variables with the 64-bit comparisons
 * written out (see int64.ts; the halves are int32, `^ SIGN` flips the sign
 * bit so that unsigned order becomes signed order):
 *   a < b unsigned:  aHi !== bHi ? (aHi ^ SIGN) < (bHi ^ SIGN) : (aLo ^ SIGN) < (bLo ^ SIGN)
 *   a < b signed:    aHi !== bHi ? aHi < bHi : (aLo ^ SIGN) < (bLo ^ SIGN)
 */
function syncInPlace(r: Mut, w: Width): void {
  let vHi = r.vHi, vLo = r.vLo, mHi = r.mHi, mLo = r.mLo;
  let uminHi = r.uminHi, uminLo = r.uminLo, umaxHi = r.umaxHi, umaxLo = r.umaxLo;
  let sminHi = r.sminHi, sminLo = r.sminLo, smaxHi = r.smaxHi, smaxLo = r.smaxLo;
  for (let pass = 0;; pass++) {
    // Bounds from the tnum: its smallest and largest members, signed and
    // unsigned: value | (mask & sign bit), value | (mask & ~sign bit),
    // value, and value | mask.
    let xHi: number, xLo: number, yHi: number, yLo: number;
    if (w === 64) {
      xHi = vHi | (mHi & SIGN);
      xLo = vLo;
      yHi = vHi | (mHi & S64_MAX_HI);
      yLo = vLo | mLo;
    } else {
      xLo = vLo | (mLo & SIGN);
      yLo = vLo | (mLo & 0x7fff_ffff);
      xHi = xLo >> 31;
      yHi = yLo >> 31;
    }
    if (sminHi !== xHi ? sminHi < xHi : (sminLo ^ SIGN) < (xLo ^ SIGN)) {
      sminHi = xHi;
      sminLo = xLo;
    }
    if (yHi !== smaxHi ? yHi < smaxHi : (yLo ^ SIGN) < (smaxLo ^ SIGN)) {
      smaxHi = yHi;
      smaxLo = yLo;
    }
    if (uminHi !== vHi ? (uminHi ^ SIGN) < (vHi ^ SIGN) : (uminLo ^ SIGN) < (vLo ^ SIGN)) {
      uminHi = vHi;
      uminLo = vLo;
    }
    const topHi = vHi | mHi, topLo = vLo | mLo;
    if (topHi !== umaxHi ? (topHi ^ SIGN) < (umaxHi ^ SIGN) : (topLo ^ SIGN) < (umaxLo ^ SIGN)) {
      umaxHi = topHi;
      umaxLo = topLo;
    }
    if (pass === 1) break;

    // Learn sign from signed bounds: if they do not cross the sign boundary,
    // signed and unsigned bounds describe the same interval.
    if (sminHi >= 0 || smaxHi < 0) {
      // [max(smin, umin), min(smax, umax)], read unsigned
      let loHi = w === 64 ? sminHi : 0, loLo = sminLo;
      if (loHi !== uminHi ? (loHi ^ SIGN) < (uminHi ^ SIGN) : (loLo ^ SIGN) < (uminLo ^ SIGN)) {
        loHi = uminHi;
        loLo = uminLo;
      }
      let hiHi = w === 64 ? smaxHi : 0, hiLo = smaxLo;
      if (umaxHi !== hiHi ? (umaxHi ^ SIGN) < (hiHi ^ SIGN) : (umaxLo ^ SIGN) < (hiLo ^ SIGN)) {
        hiHi = umaxHi;
        hiLo = umaxLo;
      }
      uminHi = loHi;
      uminLo = loLo;
      umaxHi = hiHi;
      umaxLo = hiLo;
      sminHi = w === 64 ? loHi : loLo >> 31;
      sminLo = loLo;
      smaxHi = w === 64 ? hiHi : hiLo >> 31;
      smaxLo = hiLo;
    } else if ((w === 64 ? umaxHi : umaxLo >> 31) >= 0) {
      // umax below the sign bit: everything is non-negative.
      sminHi = uminHi;
      sminLo = uminLo;
      const smaxU = w === 64 ? smaxHi : 0;
      if (smaxU !== umaxHi ? (smaxU ^ SIGN) < (umaxHi ^ SIGN) : (smaxLo ^ SIGN) < (umaxLo ^ SIGN)) {
        umaxHi = smaxU;
        umaxLo = smaxLo;
      }
      smaxHi = umaxHi;
      smaxLo = umaxLo;
    } else if ((w === 64 ? uminHi : uminLo >> 31) < 0) {
      // umin at or above the sign bit: everything is negative.
      const sminU = w === 64 ? sminHi : 0;
      if (uminHi !== sminU ? (uminHi ^ SIGN) < (sminU ^ SIGN) : (uminLo ^ SIGN) < (sminLo ^ SIGN)) {
        uminHi = sminU;
        uminLo = sminLo;
      }
      sminHi = w === 64 ? uminHi : uminLo >> 31;
      sminLo = uminLo;
      smaxHi = w === 64 ? umaxHi : umaxLo >> 31;
      smaxLo = umaxLo;
    }

    // umin > umax: contradictory, nothing more to learn.
    if (
      umaxHi !== uminHi ? (umaxHi ^ SIGN) < (uminHi ^ SIGN) : (umaxLo ^ SIGN) < (uminLo ^ SIGN)
    ) break;
    // The tnum of [umin, umax] (the common high bits are known), intersected.
    const chiHi = uminHi ^ umaxHi, chiLo = uminLo ^ umaxLo;
    const bits = chiHi !== 0 ? 64 - Math.clz32(chiHi) : 32 - Math.clz32(chiLo);
    let rvHi = 0, rvLo = 0, rmHi = -1, rmLo = -1;
    if (bits <= 63) {
      rmHi = bits > 32 ? (2 ** (bits - 32) - 1) | 0 : 0;
      rmLo = bits >= 32 ? -1 : (2 ** bits - 1) | 0;
      rvHi = uminHi & ~rmHi;
      rvLo = uminLo & ~rmLo;
    }
    const orHi = vHi | rvHi, orLo = vLo | rvLo;
    mHi &= rmHi;
    mLo &= rmLo;
    vHi = orHi & ~mHi;
    vLo = orLo & ~mLo;
    if (w === 32) {
      vHi = 0;
      mHi = 0;
    }
  }
  r.vHi = vHi;
  r.vLo = vLo;
  r.mHi = mHi;
  r.mLo = mLo;
  r.uminHi = uminHi;
  r.uminLo = uminLo;
  r.umaxHi = umaxHi;
  r.umaxLo = umaxLo;
  r.sminHi = sminHi;
  r.sminLo = sminLo;
  r.smaxHi = smaxHi;
  r.smaxLo = smaxLo;
}

/** The low 32 bits of a 64-bit scalar, as a 32-bit scalar. */
export function low32(s: Scalar): Scalar {
  const r = blank();
  tnumCast(r, s, 4);
  if (s.umaxHi === 0) setU(r, s.uminHi, s.uminLo, s.umaxHi, s.umaxLo);
  else fullU(r, 32);
  if (fitsS(s.sminHi, s.sminLo, 32) && fitsS(s.smaxHi, s.smaxLo, 32)) {
    setS(r, s.sminHi, s.sminLo, s.smaxHi, s.smaxLo);
  } else fullS(r, 32);
  syncInPlace(r, 32);
  return r;
}

/** A 32-bit scalar zero-extended to 64 bits. */
export function zext32(s: Scalar): Scalar {
  const r = blank();
  tnumCast(r, s, 4);
  setU(r, s.uminHi, s.uminLo, s.umaxHi, s.umaxLo);
  setS(r, s.uminHi, s.uminLo, s.umaxHi, s.umaxLo);
  syncInPlace(r, 64);
  return r;
}

/** A 64-bit scalar truncated to `bytes` bytes and zero-extended (narrow loads, casts). */
export function truncate(s: Scalar, bytes: number): Scalar {
  if (bytes >= 8) return s;
  const keepHi = bytes > 4 ? (2 ** (bytes * 8 - 32) - 1) | 0 : 0;
  const keepLo = bytes >= 4 ? -1 : (2 ** (bytes * 8) - 1) | 0;
  if (isConst(s)) return knownHalves(s.vHi & keepHi, s.vLo & keepLo);
  if (leU(s.umaxHi, s.umaxLo, keepHi, keepLo)) return s;
  const r = blank();
  tnumCast(r, s, bytes);
  setU(r, 0, 0, keepHi, keepLo);
  setS(r, 0, 0, keepHi, keepLo);
  syncInPlace(r, 64);
  return r;
}

function add(a: Scalar, b: Scalar, w: Width): Mut {
  const r = blank();
  tnumAdd(r, a, b);
  if (w === 32) tnumCast(r, r, 4);
  // Signed: give up when either sum leaves the range.
  add64(a.sminHi, a.sminLo, b.sminHi, b.sminLo);
  const sminHi = R.hi, sminLo = R.lo;
  let bad = w === 64 ? ((a.sminHi ^ sminHi) & (b.sminHi ^ sminHi)) < 0 : !fitsS(sminHi, sminLo, 32);
  add64(a.smaxHi, a.smaxLo, b.smaxHi, b.smaxLo);
  bad ||= w === 64 ? ((a.smaxHi ^ R.hi) & (b.smaxHi ^ R.hi)) < 0 : !fitsS(R.hi, R.lo, 32);
  if (bad) fullS(r, w);
  else setS(r, sminHi, sminLo, R.hi, R.lo);
  // Unsigned: give up when either sum wraps.
  add64(a.uminHi, a.uminLo, b.uminHi, b.uminLo);
  const uminHi = R.hi, uminLo = R.lo;
  bad = w === 64 ? ltU(uminHi, uminLo, a.uminHi, a.uminLo) : uminHi !== 0;
  add64(a.umaxHi, a.umaxLo, b.umaxHi, b.umaxLo);
  bad ||= w === 64 ? ltU(R.hi, R.lo, a.umaxHi, a.umaxLo) : R.hi !== 0;
  if (bad) fullU(r, w);
  else setU(r, uminHi, uminLo, R.hi, R.lo);
  return r;
}

function sub(a: Scalar, b: Scalar, w: Width): Mut {
  const r = blank();
  tnumSub(r, a, b);
  if (w === 32) tnumCast(r, r, 4);
  // smin = a.smin - b.smax, smax = a.smax - b.smin; give up on overflow.
  sub64(a.sminHi, a.sminLo, b.smaxHi, b.smaxLo);
  const sminHi = R.hi, sminLo = R.lo;
  let bad = w === 64
    ? ((a.sminHi ^ b.smaxHi) & (a.sminHi ^ sminHi)) < 0
    : !fitsS(sminHi, sminLo, 32);
  sub64(a.smaxHi, a.smaxLo, b.sminHi, b.sminLo);
  bad ||= w === 64 ? ((a.smaxHi ^ b.sminHi) & (a.smaxHi ^ R.hi)) < 0 : !fitsS(R.hi, R.lo, 32);
  if (bad) fullS(r, w);
  else setS(r, sminHi, sminLo, R.hi, R.lo);
  if (leU(b.umaxHi, b.umaxLo, a.uminHi, a.uminLo)) {
    sub64(a.uminHi, a.uminLo, b.umaxHi, b.umaxLo);
    const uminHi = R.hi, uminLo = R.lo;
    sub64(a.umaxHi, a.umaxLo, b.uminHi, b.uminLo);
    setU(r, uminHi, uminLo, R.hi, R.lo);
  } else fullU(r, w);
  return r;
}

/** Multiplication is rare in tools: done on bigints. */
function mul(a: Scalar, b: Scalar, w: Width): Mut {
  // Our tnum is only exact for constants (the kernel's tnum_mul knows more;
  // knowing less is safe). Bounds as the kernel computes them since 6.14:
  // unsigned and signed products, each given up on overflow.
  const r = blank();
  if (isConst(a) && isConst(b)) {
    fromBig(BigInt.asUintN(w, toBigU(a.vHi, a.vLo) * toBigU(b.vHi, b.vLo)));
    r.vHi = R.hi;
    r.vLo = R.lo;
  } else if (w === 64) tnumSetUnknown(r);
  else r.mLo = -1;
  const maxU = w === 64 ? (1n << 64n) - 1n : 0xffff_ffffn;
  const umin = toBigU(a.uminHi, a.uminLo) * toBigU(b.uminHi, b.uminLo);
  const umax = toBigU(a.umaxHi, a.umaxLo) * toBigU(b.umaxHi, b.umaxLo);
  if (umax > maxU) fullU(r, w);
  else {
    fromBig(umin);
    const uminHi = R.hi, uminLo = R.lo;
    fromBig(umax);
    setU(r, uminHi, uminLo, R.hi, R.lo);
  }
  const aMin = toBigS(a.sminHi, a.sminLo), aMax = toBigS(a.smaxHi, a.smaxLo);
  const bMin = toBigS(b.sminHi, b.sminLo), bMax = toBigS(b.smaxHi, b.smaxLo);
  const p = [aMin * bMin, aMin * bMax, aMax * bMin, aMax * bMax];
  let smin = p[0], smax = p[0];
  for (const x of p) {
    if (x < smin) smin = x;
    if (x > smax) smax = x;
  }
  const half = 1n << BigInt(w - 1);
  if (smin < -half || smax > half - 1n) fullS(r, w);
  else {
    fromBig(smin);
    const sminHi = R.hi, sminLo = R.lo;
    fromBig(smax);
    setS(r, sminHi, sminLo, R.hi, R.lo);
  }
  return r;
}

const AND = 0, OR = 1, XOR = 2;

function bitwise(op: number, a: Scalar, b: Scalar, w: Width): Mut {
  const r = blank();
  if (op === AND) tnumAnd(r, a, b);
  else if (op === OR) tnumOr(r, a, b);
  else tnumXor(r, a, b);
  const topHi = r.vHi | r.mHi, topLo = r.vLo | r.mLo;
  if (op === AND) {
    // [value, min(a.umax, b.umax)]
    const aSmaller = ltU(a.umaxHi, a.umaxLo, b.umaxHi, b.umaxLo);
    setU(r, r.vHi, r.vLo, aSmaller ? a.umaxHi : b.umaxHi, aSmaller ? a.umaxLo : b.umaxLo);
  } else if (op === OR) {
    // [max(a.umin, b.umin), value | mask]
    const aBigger = ltU(b.uminHi, b.uminLo, a.uminHi, a.uminLo);
    setU(r, aBigger ? a.uminHi : b.uminHi, aBigger ? a.uminLo : b.uminLo, topHi, topLo);
  } else {
    setU(r, r.vHi, r.vLo, topHi, topLo);
  }
  // umax > maxS(w)
  const umaxTooBig = w === 64 ? r.umaxHi < 0 : r.umaxHi !== 0 || r.umaxLo < 0;
  if (a.sminHi < 0 || b.sminHi < 0 || umaxTooBig) fullS(r, w);
  else setS(r, r.uminHi, r.uminLo, r.umaxHi, r.umaxLo);
  return r;
}

function lsh(a: Scalar, s: number, w: Width): Mut {
  const r = blank();
  tnumLshift(r, a, s);
  if (w === 32) tnumCast(r, r, 4);
  fullS(r, w);
  // a.umax > 2^(w - 1 - s): the shifted bounds may overflow.
  shl64(0, 1, w - 1 - s);
  if (ltU(R.hi, R.lo, a.umaxHi, a.umaxLo)) {
    fullU(r, w);
    return r;
  }
  shl64(a.uminHi, a.uminLo, s);
  const uminHi = R.hi, uminLo = R.lo;
  shl64(a.umaxHi, a.umaxLo, s);
  setU(r, uminHi, uminLo, R.hi, R.lo);
  return r;
}

function rsh(a: Scalar, s: number, w: Width): Mut {
  const r = blank();
  tnumRshift(r, a, s);
  shr64(a.uminHi, a.uminLo, s);
  const uminHi = R.hi, uminLo = R.lo;
  shr64(a.umaxHi, a.umaxLo, s);
  setU(r, uminHi, uminLo, R.hi, R.lo);
  fullS(r, w);
  return r;
}

function arsh(a: Scalar, s: number, w: Width): Mut {
  const r = blank();
  tnumArshift(r, a, s, w);
  fullU(r, w);
  sar64(a.sminHi, a.sminLo, s);
  const sminHi = R.hi, sminLo = R.lo;
  sar64(a.smaxHi, a.smaxLo, s);
  setS(r, sminHi, sminLo, R.hi, R.lo);
  return r;
}

/** ALU operations the range tracker understands (others give "unknown"). */
export type ScalarOp =
  | "add"
  | "sub"
  | "mul"
  | "and"
  | "or"
  | "xor"
  | "lsh"
  | "rsh"
  | "arsh"
  | "neg"
  | "other";

/**
 * `a op b` at width w, on w-bit scalars. Returns undefined where the kernel
 * gives up (the caller then marks the whole 64-bit register unknown).
 */
export function aluOp(op: ScalarOp, a: Scalar, b: Scalar, w: Width): Scalar | undefined {
  if (isConst(a) && isConst(b)) {
    // Constants in, constant out (the kernel's ranges are exact here too).
    if (constOp(op, a, b, w)) return knownHalves(R.hi, R.lo, w);
  }
  let r: Mut;
  switch (op) {
    case "add":
      r = add(a, b, w);
      break;
    case "sub":
      r = sub(a, b, w);
      break;
    case "neg":
      r = sub(SMALL[0], a, w);
      break;
    case "mul":
      r = mul(a, b, w);
      break;
    case "and":
      r = bitwise(AND, a, b, w);
      break;
    case "or":
      r = bitwise(OR, a, b, w);
      break;
    case "xor":
      r = bitwise(XOR, a, b, w);
      break;
    case "lsh":
    case "rsh":
    case "arsh": {
      // Only a constant shift amount below the width gives bounds.
      if (!isConst(b) || b.umaxHi !== 0 || b.umaxLo < 0 || b.umaxLo >= w) return undefined;
      const s = b.umaxLo;
      r = op === "lsh" ? lsh(a, s, w) : op === "rsh" ? rsh(a, s, w) : arsh(a, s, w);
      break;
    }
    default:
      return undefined;
  }
  syncInPlace(r, w);
  return r;
}

/** Pointer offsets: `a + b` at 64 bits, without the constant shortcut. */
export function add64Scalar(a: Scalar, b: Scalar): Scalar {
  const r = add(a, b, 64);
  syncInPlace(r, 64);
  return r;
}

/** Pointer offsets: `a - b` at 64 bits. */
export function sub64Scalar(a: Scalar, b: Scalar): Scalar {
  const r = sub(a, b, 64);
  syncInPlace(r, 64);
  return r;
}

/** `a op b` on constants, into R (not yet reduced to width w); false when undefined. */
function constOp(op: ScalarOp, a: Scalar, b: Scalar, w: Width): boolean {
  const shiftOk = b.vHi === 0 && b.vLo >= 0 && b.vLo < w;
  switch (op) {
    case "add":
      add64(a.vHi, a.vLo, b.vHi, b.vLo);
      return true;
    case "sub":
      sub64(a.vHi, a.vLo, b.vHi, b.vLo);
      return true;
    case "neg":
      sub64(0, 0, a.vHi, a.vLo);
      return true;
    case "mul":
      fromBig(toBigU(a.vHi, a.vLo) * toBigU(b.vHi, b.vLo));
      return true;
    case "and":
      R.hi = a.vHi & b.vHi;
      R.lo = a.vLo & b.vLo;
      return true;
    case "or":
      R.hi = a.vHi | b.vHi;
      R.lo = a.vLo | b.vLo;
      return true;
    case "xor":
      R.hi = a.vHi ^ b.vHi;
      R.lo = a.vLo ^ b.vLo;
      return true;
    case "lsh":
      if (shiftOk) shl64(a.vHi, a.vLo, b.vLo);
      return shiftOk;
    case "rsh":
      if (shiftOk) shr64(a.vHi, a.vLo, b.vLo);
      return shiftOk;
    case "arsh":
      if (shiftOk) sar64(hiS(a.vHi, a.vLo, w), a.vLo, b.vLo);
      return shiftOk;
  }
  return false;
}

/** Does `outer` contain every value of `inner`? (used to prune explored states) */
export function scalarContains(outer: Scalar, inner: Scalar): boolean {
  return leU(outer.uminHi, outer.uminLo, inner.uminHi, inner.uminLo) &&
    leU(inner.umaxHi, inner.umaxLo, outer.umaxHi, outer.umaxLo) &&
    leS(outer.sminHi, outer.sminLo, inner.sminHi, inner.sminLo) &&
    leS(inner.smaxHi, inner.smaxLo, outer.smaxHi, outer.smaxLo) &&
    (inner.mHi & ~outer.mHi) === 0 && (inner.mLo & ~outer.mLo) === 0 &&
    (inner.vHi & ~outer.mHi) === outer.vHi && (inner.vLo & ~outer.mLo) === outer.vLo;
}

/** Same set description. */
export function scalarEquals(a: Scalar, b: Scalar): boolean {
  return a.uminHi === b.uminHi && a.uminLo === b.uminLo && a.umaxHi === b.umaxHi &&
    a.umaxLo === b.umaxLo && a.sminHi === b.sminHi && a.sminLo === b.sminLo &&
    a.smaxHi === b.smaxHi && a.smaxLo === b.smaxLo && a.vHi === b.vHi && a.vLo === b.vLo &&
    a.mHi === b.mHi && a.mLo === b.mLo;
}

/** Short human form, like the kernel log: `0x10`, or `umax=255,var_off=(0x0; 0xff)`. */
export function scalarToString(s: Scalar): string {
  if (isConst(s)) return String(toBigS(s.vHi, s.vLo));
  const parts: string[] = [];
  if (!noSignedMin(s)) parts.push(`smin=${toBigS(s.sminHi, s.sminLo)}`);
  if (s.smaxHi !== S64_MAX_HI || s.smaxLo !== -1) parts.push(`smax=${toBigS(s.smaxHi, s.smaxLo)}`);
  if (s.uminHi !== 0 || s.uminLo !== 0) parts.push(`umin=${toBigU(s.uminHi, s.uminLo)}`);
  if (s.umaxHi !== -1 || s.umaxLo !== -1) parts.push(`umax=${toBigU(s.umaxHi, s.umaxLo)}`);
  if (s.mHi !== -1 || s.mLo !== -1) parts.push(`var_off=${tnumToString(s)}`);
  return parts.length ? parts.join(",") : "unknown";
}

/** The scalar as bigints (tests compare it with the reference implementation). */
export function scalarToBig(
  s: Scalar,
): {
  tnum: { value: bigint; mask: bigint };
  umin: bigint;
  umax: bigint;
  smin: bigint;
  smax: bigint;
} {
  return {
    tnum: { value: toBigU(s.vHi, s.vLo), mask: toBigU(s.mHi, s.mLo) },
    umin: toBigU(s.uminHi, s.uminLo),
    umax: toBigU(s.umaxHi, s.umaxLo),
    smin: toBigS(s.sminHi, s.sminLo),
    smax: toBigS(s.smaxHi, s.smaxLo),
  };
}

/** A scalar from bigints (tests build abstract values this way). */
export function scalarFromBig(
  b: {
    tnum: { value: bigint; mask: bigint };
    umin: bigint;
    umax: bigint;
    smin: bigint;
    smax: bigint;
  },
): Scalar {
  const r = blank();
  fromBig(b.tnum.value);
  r.vHi = R.hi;
  r.vLo = R.lo;
  fromBig(b.tnum.mask);
  r.mHi = R.hi;
  r.mLo = R.lo;
  fromBig(b.umin);
  r.uminHi = R.hi;
  r.uminLo = R.lo;
  fromBig(b.umax);
  r.umaxHi = R.hi;
  r.umaxLo = R.lo;
  fromBig(b.smin);
  r.sminHi = R.hi;
  r.sminLo = R.lo;
  fromBig(b.smax);
  r.smaxHi = R.hi;
  r.smaxLo = R.lo;
  return r;
}
