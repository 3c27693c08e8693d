/**
 * Sign extension of the low `bits` bits of a number (movsx, ldsx), keeping
 * the range when it allows: a value whose range already fits the signed
 * `bits`-bit range is unchanged by it (the kernel's coerce_reg_to_size_sx
 * keeps such ranges too).
 *
 * @module
 */

import {
  isConst,
  known,
  type Scalar,
  signedRange,
  smaxNum,
  sminNum,
  truncate,
  unknown,
} from "./scalar.ts";

/** The low `bits` (8, 16 or 32) bits of `s` sign-extended to 64 bits. */
export function signExtend(s: Scalar, bits: number): Scalar {
  const half = 2 ** (bits - 1);
  if (isConst(s)) return known((s.vLo << (32 - bits)) >> (32 - bits));
  // Doubles are exact near the bounds compared (at most 2^31).
  if (sminNum(s) >= -half && smaxNum(s) <= half - 1) return s;
  return signedRange(-half, half - 1);
}

/** The same in a 32-bit register (movsx32): sign-extended to 32 bits, then zero-extended. */
export function signExtend32(s: Scalar, bits: number): Scalar {
  if (isConst(s)) return known((s.vLo << (32 - bits)) >> (32 - bits) >>> 0);
  const half = 2 ** (bits - 1);
  if (sminNum(s) >= 0 && smaxNum(s) <= half - 1) return s;
  return truncate(unknown(64), 4);
}
