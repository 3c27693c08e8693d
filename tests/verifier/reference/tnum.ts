/**
 * Reference tnums on bigints (see reference/scalar.ts): what
 * lib/verifier/tnum.ts computes on 32-bit halves.
 *
 * Tristate numbers ("tnums"), as the kernel's `kernel/bpf/tnum.c` defines
 * them: a value whose bits are each known-0, known-1 or unknown. `value`
 * holds the known-1 bits, `mask` the unknown ones; `value & mask` is 0.
 * All arithmetic is modulo 2^64, on unsigned bigints.
 *
 * @module
 */

/** Bits: 2^64 - 1. */
export const U64_MAX = (1n << 64n) - 1n;

/** A tristate number. */
export interface Tnum {
  readonly value: bigint;
  readonly mask: bigint;
}

const u64 = (x: bigint) => BigInt.asUintN(64, x);

/** A known constant (taken modulo 2^64). */
export function tnumConst(v: bigint): Tnum {
  return { value: u64(v), mask: 0n };
}

/** Nothing known. */
export const TNUM_UNKNOWN: Tnum = { value: 0n, mask: U64_MAX };

/** Every value in [min, max] (unsigned): the common high bits are known. */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const chi = min ^ max;
  const hi = Number(chi >> 32n), lo = Number(chi & 0xffff_ffffn);
  const bits = hi ? 64 - Math.clz32(hi) : 32 - Math.clz32(lo);
  if (bits > 63) return TNUM_UNKNOWN;
  const delta = (1n << BigInt(bits)) - 1n;
  return { value: min & ~delta & U64_MAX, mask: delta };
}

/** Is the value fully known? */
export function tnumIsConst(a: Tnum): boolean {
  return a.mask === 0n;
}

/** Shift left by a constant. */
export function tnumLshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: u64(a.value << s), mask: u64(a.mask << s) };
}

/** Logical shift right by a constant. */
export function tnumRshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: a.value >> s, mask: a.mask >> s };
}

/** Arithmetic shift right by a constant, at a width of 32 or 64 bits. */
export function tnumArshift(a: Tnum, shift: number, bits: 32 | 64): Tnum {
  const s = BigInt(shift);
  const w = BigInt(bits);
  return {
    value: BigInt.asUintN(bits, BigInt.asIntN(bits, a.value) >> s) & ((1n << w) - 1n),
    mask: BigInt.asUintN(bits, BigInt.asIntN(bits, a.mask) >> s) & ((1n << w) - 1n),
  };
}

/** Sum. */
export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = u64(a.mask + b.mask);
  const sv = u64(a.value + b.value);
  const sigma = u64(sm + sv);
  const chi = sigma ^ sv;
  const mu = chi | a.mask | b.mask;
  return { value: sv & ~mu & U64_MAX, mask: mu };
}

/** Difference. */
export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = u64(a.value - b.value);
  const alpha = u64(dv + a.mask);
  const beta = u64(dv - b.mask);
  const chi = alpha ^ beta;
  const mu = chi | a.mask | b.mask;
  return { value: dv & ~mu & U64_MAX, mask: mu };
}

/** Bitwise and. */
export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return { value: v, mask: alpha & beta & ~v & U64_MAX };
}

/** Bitwise or. */
export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return { value: v, mask: mu & ~v & U64_MAX };
}

/** Bitwise xor. */
export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return { value: v & ~mu & U64_MAX, mask: mu };
}

/** Values both describe (assumes they overlap). */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return { value: v & ~mu & U64_MAX, mask: mu };
}

/** Truncates to the low `bytes` bytes. */
export function tnumCast(a: Tnum, bytes: number): Tnum {
  const m = (1n << BigInt(bytes * 8)) - 1n;
  return { value: a.value & m, mask: a.mask & m };
}

/** Does `a` contain every value `b` describes? */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if (b.mask & ~a.mask) return false;
  return (b.value & ~a.mask) === a.value;
}

/** Equal as tnums. */
export function tnumEquals(a: Tnum, b: Tnum): boolean {
  return a.value === b.value && a.mask === b.mask;
}

/** The kernel's print form, e.g. `(0x0; 0xff)`. */
export function tnumToString(a: Tnum): string {
  if (a.mask === 0n) return `0x${a.value.toString(16)}`;
  return `(0x${a.value.toString(16)}; 0x${a.mask.toString(16)})`;
}
