/**
 * Byte order conversions on numbers (`le16`...`be64`, `bswap16`...`bswap64`),
 * the way the kernel tracks them: on a little-endian machine `le` keeps the
 * low bits (a truncation), `be` and `bswap` reverse the bytes of the known
 * bits. Constants stay constants, so branches on them are decided as the
 * kernel decides them.
 *
 * @module
 */

import { type Scalar, scalarFromBig, scalarToBig, sync, truncate } from "./scalar.ts";

const U64 = (1n << 64n) - 1n;

function reverseBytes(x: bigint, bits: number): bigint {
  let out = 0n;
  for (let i = 0; i < bits; i += 8) out = (out << 8n) | ((x >> BigInt(i)) & 0xffn);
  return out;
}

/** The low `bits` bits of `s`, with their bytes reversed when `swap`, zero-extended. */
export function byteSwap(s: Scalar, bits: 16 | 32 | 64, swap: boolean): Scalar {
  if (!swap) return truncate(s, bits / 8);
  const { tnum } = scalarToBig(s);
  const value = reverseBytes(tnum.value, bits), mask = reverseBytes(tnum.mask, bits);
  return sync(
    scalarFromBig({
      tnum: { value, mask },
      umin: 0n,
      umax: U64,
      smin: -(1n << 63n),
      smax: (1n << 63n) - 1n,
    }),
    64,
  );
}
