/**
 * 64-bit integers as two 32-bit halves, for the range tracker: `hi` is the
 * upper half and `lo` the lower half, each held as a signed int32 (`x | 0`);
 * the pair is the bit pattern, read as unsigned or signed as each operation
 * says. The low half is always an unsigned part of the number, so it is
 * compared with its sign bit flipped (`lo ^ SIGN`).
 *
 * Why not BigInt: every program is verified once, at tool start, while V8
 * still interprets our code; there each BigInt operation allocates and calls
 * into the runtime, which made verifying 5-10 times slower than the same
 * arithmetic on small numbers. And why int32 halves rather than uint32:
 * V8 keeps int32 values unboxed (as "small integers"), while a uint32 above
 * 2^31 is a heap-allocated number.
 *
 * Operations that produce a pair write it to {@link R} (one shared record,
 * so nothing is allocated): read `R.hi` and `R.lo` before the next call.
 *
 * @module
 */

/** 2^32. */
export const TWO32 = 4294967296;

/** The sign bit of an int32: `x ^ SIGN` turns unsigned order into signed order. */
export const SIGN = -0x8000_0000;

/** The result of the last pair-producing operation. */
export const R = { hi: 0, lo: 0 };

/** a < b, unsigned. */
export function ltU(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi !== bHi ? (aHi ^ SIGN) < (bHi ^ SIGN) : (aLo ^ SIGN) < (bLo ^ SIGN);
}

/** a <= b, unsigned. */
export function leU(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi !== bHi ? (aHi ^ SIGN) < (bHi ^ SIGN) : (aLo ^ SIGN) <= (bLo ^ SIGN);
}

/** a < b, signed. */
export function ltS(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi !== bHi ? aHi < bHi : (aLo ^ SIGN) < (bLo ^ SIGN);
}

/** a <= b, signed. */
export function leS(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi !== bHi ? aHi < bHi : (aLo ^ SIGN) <= (bLo ^ SIGN);
}

/** a + b modulo 2^64, into R. */
export function add64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = (aLo + bLo) | 0;
  // A carry out of the low half: the unsigned sum wrapped below an operand.
  R.hi = (aHi + bHi + ((lo ^ SIGN) < (aLo ^ SIGN) ? 1 : 0)) | 0;
  R.lo = lo;
}

/** a - b modulo 2^64, into R. */
export function sub64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  // A borrow from the high half: aLo < bLo unsigned.
  R.hi = (aHi - bHi - ((aLo ^ SIGN) < (bLo ^ SIGN) ? 1 : 0)) | 0;
  R.lo = (aLo - bLo) | 0;
}

/** Shift left by 0-63, into R. */
export function shl64(hi: number, lo: number, s: number): void {
  if (s === 0) {
    R.hi = hi;
    R.lo = lo;
  } else if (s < 32) {
    R.hi = (hi << s) | (lo >>> (32 - s));
    R.lo = lo << s;
  } else {
    R.hi = lo << (s - 32);
    R.lo = 0;
  }
}

/** Logical shift right by 0-63, into R. */
export function shr64(hi: number, lo: number, s: number): void {
  if (s === 0) {
    R.hi = hi;
    R.lo = lo;
  } else if (s < 32) {
    R.lo = (lo >>> s) | (hi << (32 - s));
    R.hi = hi >>> s;
  } else {
    R.lo = (hi >>> (s - 32)) | 0;
    R.hi = 0;
  }
}

/** Arithmetic shift right by 0-63, into R. */
export function sar64(hi: number, lo: number, s: number): void {
  if (s === 0) {
    R.hi = hi;
    R.lo = lo;
  } else if (s < 32) {
    R.lo = (lo >>> s) | (hi << (32 - s));
    R.hi = hi >> s;
  } else {
    R.lo = hi >> (s - 32);
    R.hi = hi >> 31;
  }
}

/** Leading zero bits of the 64-bit value. */
export function clz64(hi: number, lo: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

/**
 * The signed value as a double: exact within +-2^53, beyond that rounded
 * but still ordered, so comparing it with a small bound is exact.
 */
export function toNumS(hi: number, lo: number): number {
  // Values that fit an int32 stay small integers (no heap number is made).
  if (hi === lo >> 31) return lo;
  return hi * TWO32 + (lo >>> 0);
}

/** The unsigned value as a double (exact below 2^53, ordered above). */
export function toNumU(hi: number, lo: number): number {
  if (hi === 0 && lo >= 0) return lo;
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** The unsigned value as a bigint (messages, rare operations). */
export function toBigU(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** The signed value as a bigint. */
export function toBigS(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo >>> 0);
}

/** Splits a bigint (taken modulo 2^64) into R. */
export function fromBig(x: bigint): void {
  const u = BigInt.asUintN(64, x);
  R.hi = Number(u >> 32n) | 0;
  R.lo = Number(u & 0xffff_ffffn) | 0;
}
