/**
 * Reference for the range tracker: lib/verifier/scalar.ts as it was written
 * first, on bigints (the verifier now computes on 32-bit halves, which is
 * faster while V8 is cold). Tests check that both give identical results;
 * this file is not used by the verifier.
 *
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
 * @module
 */

import {
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumCast,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumLshift,
  tnumOr,
  tnumRange,
  tnumRshift,
  tnumSub,
  tnumToString,
  tnumXor,
  U64_MAX,
} from "./tnum.ts";

/** Width of an operation in bits. */
export type Width = 32 | 64;

/**
 * A set of numbers: all values x with `tnum` matching, `umin <= x <= umax`
 * unsigned and `smin <= x <= smax` signed (at the scalar's width).
 */
export interface Scalar {
  readonly tnum: Tnum;
  readonly umin: bigint;
  readonly umax: bigint;
  readonly smin: bigint;
  readonly smax: bigint;
}

const U64 = U64_MAX, U32 = 0xffff_ffffn;
const S64_MIN = -(1n << 63n), S64_MAX = (1n << 63n) - 1n;
const S32_MIN = -(1n << 31n), S32_MAX = (1n << 31n) - 1n;

/** Largest unsigned value at a width. */
export function maxU(w: Width): bigint {
  return w === 64 ? U64 : U32;
}
/** Smallest signed value at a width. */
export function minS(w: Width): bigint {
  return w === 64 ? S64_MIN : S32_MIN;
}
/** Largest signed value at a width. */
export function maxS(w: Width): bigint {
  return w === 64 ? S64_MAX : S32_MAX;
}

const toU = (x: bigint, w: Width) => BigInt.asUintN(w, x);
const toS = (x: bigint, w: Width) => BigInt.asIntN(w, x);
const bmax = (a: bigint, b: bigint) => (a > b ? a : b);
const bmin = (a: bigint, b: bigint) => (a < b ? a : b);

const UNKNOWN_64: Scalar = {
  tnum: { value: 0n, mask: U64 },
  umin: 0n,
  umax: U64,
  smin: S64_MIN,
  smax: S64_MAX,
};
const UNKNOWN_32: Scalar = {
  tnum: { value: 0n, mask: U32 },
  umin: 0n,
  umax: U32,
  smin: S32_MIN,
  smax: S32_MAX,
};

/** Anything at all (at width w). Shared: never change a Scalar in place. */
export function unknown(w: Width = 64): Scalar {
  return w === 64 ? UNKNOWN_64 : UNKNOWN_32;
}

/** Small constants are shared: programs use them all the time. */
const SMALL: Scalar[] = [];
for (let i = 0; i < 256; i++) {
  const v = BigInt(i);
  SMALL.push({ tnum: { value: v, mask: 0n }, umin: v, umax: v, smin: v, smax: v });
}

/** Exactly `v` (taken modulo 2^w). */
export function known(v: bigint, w: Width = 64): Scalar {
  if (v >= 0n && v < 256n) return SMALL[Number(v)];
  const u = toU(v, w);
  const sv = toS(u, w);
  return { tnum: tnumConst(u), umin: u, umax: u, smin: sv, smax: sv };
}

const OF_SIZE: Scalar[] = [1, 2, 3, 4, 5, 6, 7].map((bytes) => {
  const max = (1n << BigInt(bytes * 8)) - 1n;
  return { tnum: { value: 0n, mask: max }, umin: 0n, umax: max, smin: 0n, smax: max };
});

/** Any value of `bytes` bytes, zero-extended: [0, 2^(8*bytes) - 1]. */
export function unknownOfSize(bytes: number): Scalar {
  return bytes >= 8 ? UNKNOWN_64 : OF_SIZE[bytes - 1];
}

/** Every value in [lo, hi] when read as signed numbers at width w. */
export function signedRange(lo: bigint, hi: bigint, w: Width = 64): Scalar {
  return sync({ tnum: unknown(w).tnum, umin: 0n, umax: maxU(w), smin: lo, smax: hi }, w);
}

/** Is it a single known value? */
export function isConst(s: Scalar): boolean {
  return tnumIsConst(s.tnum);
}

/** The single value (unsigned), assuming isConst. */
export function constValue(s: Scalar): bigint {
  return s.tnum.value;
}

/** True when no value satisfies all the bounds (an impossible branch). */
export function isEmpty(s: Scalar): boolean {
  return s.umin > s.umax || s.smin > s.smax || (s.tnum.value & s.tnum.mask) !== 0n;
}

/**
 * Tightens bounds against each other and the tnum (the kernel's
 * `__update_reg_bounds`, the older `__reg_deduce_bounds`, `__reg_bound_offset`).
 */
export function sync(s: Scalar, w: Width): Scalar {
  let { tnum, umin, umax, smin, smax } = s;
  const sign = 1n << BigInt(w - 1);
  const fromTnum = () => {
    smin = bmax(smin, toS(tnum.value | (tnum.mask & sign), w));
    smax = bmin(smax, toS(tnum.value | (tnum.mask & (sign - 1n)), w));
    umin = bmax(umin, tnum.value);
    umax = bmin(umax, tnum.value | tnum.mask);
  };
  fromTnum();
  // Learn sign from signed bounds: if they do not cross the sign boundary,
  // signed and unsigned bounds describe the same interval.
  if (smin >= 0n || smax < 0n) {
    const lo = bmax(toU(smin, w), umin);
    const hi = bmin(toU(smax, w), umax);
    umin = lo;
    umax = hi;
    smin = toS(lo, w);
    smax = toS(hi, w);
  } else if (toS(umax, w) >= 0n) {
    smin = umin;
    umax = bmin(toU(smax, w), umax);
    smax = umax;
  } else if (toS(umin, w) < 0n) {
    umin = bmax(toU(smin, w), umin);
    smin = toS(umin, w);
    smax = toS(umax, w);
  }
  if (umin <= umax) {
    tnum = tnumIntersect(tnum, tnumRange(umin, umax));
    if (w === 32) tnum = tnumCast(tnum, 4);
    fromTnum();
  }
  return { tnum, umin, umax, smin, smax };
}

/** The low 32 bits of a 64-bit scalar, as a 32-bit scalar. */
export function low32(s: Scalar): Scalar {
  let r: Scalar = {
    tnum: tnumCast(s.tnum, 4),
    umin: 0n,
    umax: 0xffff_ffffn,
    smin: minS(32),
    smax: maxS(32),
  };
  if (s.umax <= 0xffff_ffffn) r = { ...r, umin: s.umin, umax: s.umax };
  if (s.smin >= minS(32) && s.smax <= maxS(32)) r = { ...r, smin: s.smin, smax: s.smax };
  return sync(r, 32);
}

/** A 32-bit scalar zero-extended to 64 bits. */
export function zext32(s: Scalar): Scalar {
  return sync(
    { tnum: tnumCast(s.tnum, 4), umin: s.umin, umax: s.umax, smin: s.umin, smax: s.umax },
    64,
  );
}

/** A 64-bit scalar truncated to `bytes` bytes and zero-extended (narrow loads, casts). */
export function truncate(s: Scalar, bytes: number): Scalar {
  if (bytes >= 8) return s;
  if (isConst(s)) return known(s.tnum.value & ((1n << BigInt(bytes * 8)) - 1n));
  const max = (1n << BigInt(bytes * 8)) - 1n;
  if (s.umax <= max) return s;
  return sync({ tnum: tnumCast(s.tnum, bytes), umin: 0n, umax: max, smin: 0n, smax: max }, 64);
}

function full(w: Width, tnum: Tnum = unknown(w).tnum): Scalar {
  return { tnum, umin: 0n, umax: maxU(w), smin: minS(w), smax: maxS(w) };
}

function add(a: Scalar, b: Scalar, w: Width): Scalar {
  let tnum = tnumAdd(a.tnum, b.tnum);
  if (w === 32) tnum = tnumCast(tnum, 4);
  let smin = a.smin + b.smin, smax = a.smax + b.smax;
  if (smin < minS(w) || smax > maxS(w) || smin > maxS(w) || smax < minS(w)) {
    smin = minS(w);
    smax = maxS(w);
  }
  let umin = a.umin + b.umin, umax = a.umax + b.umax;
  if (umin > maxU(w) || umax > maxU(w)) {
    umin = 0n;
    umax = maxU(w);
  }
  return { tnum, umin, umax, smin, smax };
}

function sub(a: Scalar, b: Scalar, w: Width): Scalar {
  let tnum = tnumSub(a.tnum, b.tnum);
  if (w === 32) tnum = tnumCast(tnum, 4);
  let smin = a.smin - b.smax, smax = a.smax - b.smin;
  if (smin < minS(w) || smax > maxS(w) || smin > maxS(w) || smax < minS(w)) {
    smin = minS(w);
    smax = maxS(w);
  }
  let umin = 0n, umax = maxU(w);
  if (a.umin >= b.umax) {
    umin = a.umin - b.umax;
    umax = a.umax - b.umin;
  }
  return { tnum, umin, umax, smin, smax };
}

function mul(a: Scalar, b: Scalar, w: Width): Scalar {
  // Our tnum is only exact for constants (the kernel's tnum_mul knows more;
  // knowing less is safe). Bounds as the kernel computes them since 6.14:
  // unsigned and signed products, each given up on overflow.
  const tnum = isConst(a) && isConst(b)
    ? tnumConst(toU(a.tnum.value * b.tnum.value, w))
    : unknown(w).tnum;
  let umin = a.umin * b.umin, umax = a.umax * b.umax;
  if (umax > maxU(w)) {
    umin = 0n;
    umax = maxU(w);
  }
  const p = [a.smin * b.smin, a.smin * b.smax, a.smax * b.smin, a.smax * b.smax];
  let smin = p[0], smax = p[0];
  for (const x of p) {
    if (x < smin) smin = x;
    if (x > smax) smax = x;
  }
  if (smin < minS(w) || smax > maxS(w)) {
    smin = minS(w);
    smax = maxS(w);
  }
  return { tnum, umin, umax, smin, smax };
}

function bitwise(
  op: "and" | "or" | "xor",
  a: Scalar,
  b: Scalar,
  w: Width,
): Scalar {
  const tnum = op === "and"
    ? tnumAnd(a.tnum, b.tnum)
    : op === "or"
    ? tnumOr(a.tnum, b.tnum)
    : tnumXor(a.tnum, b.tnum);
  let umin: bigint, umax: bigint;
  if (op === "and") {
    umin = tnum.value;
    umax = bmin(a.umax, b.umax);
  } else if (op === "or") {
    umin = bmax(a.umin, b.umin);
    umax = tnum.value | tnum.mask;
  } else {
    umin = tnum.value;
    umax = tnum.value | tnum.mask;
  }
  if (a.smin < 0n || b.smin < 0n || umax > maxS(w)) {
    return { tnum, umin, umax, smin: minS(w), smax: maxS(w) };
  }
  return { tnum, umin, umax, smin: umin, smax: umax };
}

function lsh(a: Scalar, s: number, w: Width): Scalar {
  let tnum = tnumLshift(a.tnum, s);
  if (w === 32) tnum = tnumCast(tnum, 4);
  if (a.umax > 1n << BigInt(w - 1 - s)) return full(w, tnum);
  return {
    tnum,
    umin: a.umin << BigInt(s),
    umax: a.umax << BigInt(s),
    smin: minS(w),
    smax: maxS(w),
  };
}

function rsh(a: Scalar, s: number, w: Width): Scalar {
  const tnum = tnumRshift(a.tnum, s);
  return {
    tnum,
    umin: a.umin >> BigInt(s),
    umax: a.umax >> BigInt(s),
    smin: minS(w),
    smax: maxS(w),
  };
}

function arsh(a: Scalar, s: number, w: Width): Scalar {
  const tnum = tnumArshift(a.tnum, s, w);
  return { tnum, umin: 0n, umax: maxU(w), smin: a.smin >> BigInt(s), smax: a.smax >> BigInt(s) };
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
  if (a.tnum.mask === 0n && b.tnum.mask === 0n) {
    // Constants in, constant out (the kernel's ranges are exact here too).
    const c = constOp(op, a.tnum.value, b.tnum.value, w);
    if (c !== undefined) return known(c, w);
  }
  let r: Scalar;
  switch (op) {
    case "add":
      r = add(a, b, w);
      break;
    case "sub":
      r = sub(a, b, w);
      break;
    case "neg":
      r = sub(known(0n, w), a, w);
      break;
    case "mul":
      r = mul(a, b, w);
      break;
    case "and":
    case "or":
    case "xor":
      r = bitwise(op, a, b, w);
      break;
    case "lsh":
    case "rsh":
    case "arsh": {
      // Only a constant shift amount below the width gives bounds.
      if (!isConst(b) || b.umax >= BigInt(w)) return undefined;
      const s = Number(b.umax);
      r = op === "lsh" ? lsh(a, s, w) : op === "rsh" ? rsh(a, s, w) : arsh(a, s, w);
      break;
    }
    default:
      return undefined;
  }
  return sync(r, w);
}

function constOp(op: ScalarOp, a: bigint, b: bigint, w: Width): bigint | undefined {
  const W = BigInt(w);
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "neg":
      return -a;
    case "mul":
      return a * b;
    case "and":
      return a & b;
    case "or":
      return a | b;
    case "xor":
      return a ^ b;
    case "lsh":
      return b < W ? a << b : undefined;
    case "rsh":
      return b < W ? a >> b : undefined;
    case "arsh":
      return b < W ? BigInt.asIntN(w, a) >> b : undefined;
  }
  return undefined;
}

/** Does `outer` contain every value of `inner`? (used to prune explored states) */
export function scalarContains(outer: Scalar, inner: Scalar): boolean {
  return outer.umin <= inner.umin && outer.umax >= inner.umax && outer.smin <= inner.smin &&
    outer.smax >= inner.smax && (inner.tnum.mask & ~outer.tnum.mask) === 0n &&
    (inner.tnum.value & ~outer.tnum.mask) === outer.tnum.value;
}

/** Same set description. */
export function scalarEquals(a: Scalar, b: Scalar): boolean {
  return a.umin === b.umin && a.umax === b.umax && a.smin === b.smin && a.smax === b.smax &&
    a.tnum.value === b.tnum.value && a.tnum.mask === b.tnum.mask;
}

/** Short human form, like the kernel log: `0x10`, or `umax=255,var_off=(0x0; 0xff)`. */
export function scalarToString(s: Scalar): string {
  if (isConst(s)) return String(toS(s.tnum.value, 64));
  const parts: string[] = [];
  if (s.smin !== minS(64)) parts.push(`smin=${s.smin}`);
  if (s.smax !== maxS(64)) parts.push(`smax=${s.smax}`);
  if (s.umin !== 0n) parts.push(`umin=${s.umin}`);
  if (s.umax !== U64_MAX) parts.push(`umax=${s.umax}`);
  if (s.tnum.mask !== U64_MAX) parts.push(`var_off=${tnumToString(s.tnum)}`);
  return parts.length ? parts.join(",") : "unknown";
}
