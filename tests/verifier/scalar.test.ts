/**
 * Soundness of the range tracker, by sampling: for random abstract values
 * and concrete members of them, the result of every operation on the members
 * lies in the abstract result; branch refinements keep every pair that
 * satisfies the condition; decided branches are decided for every member.
 * And exactness: the verifier's operations on 32-bit halves give the same
 * results, bit for bit, as the bigint reference (tests/verifier/reference),
 * whose precision was checked against the kernel.
 */
import { deepEqual, ok } from "node:assert/strict";
import * as op from "../../bytecode/opcodes.ts";
import { branchTaken, jmp32IsExact, negateJump, refine } from "../../lib/verifier/branch.ts";
import {
  aluOp,
  isEmpty as fastIsEmpty,
  low32 as fastLow32,
  type Scalar as FastScalar,
  scalarContains,
  scalarFromBig,
  scalarToBig,
  sync as fastSync,
  truncate,
  zext32 as fastZext32,
} from "../../lib/verifier/scalar.ts";
import * as ref from "./reference/scalar.ts";
import * as refBranch from "./reference/branch.ts";
import { isEmpty, maxU, type Scalar, type ScalarOp, sync, type Width } from "./reference/scalar.ts";
import { Rng } from "./generator.ts";

const fast = (s: Scalar): FastScalar => scalarFromBig(s);
const big = (s: FastScalar | undefined): Scalar | undefined => s && scalarToBig(s);
const low32 = (s: Scalar) => big(fastLow32(fast(s)))!;
const zext32 = (s: Scalar) => big(fastZext32(fast(s)))!;

function rand64(r: Rng): bigint {
  const hi = BigInt(r.int(0, 0xffff_ffff)), lo = BigInt(r.int(0, 0xffff_ffff));
  const x = (hi << 32n) | lo;
  switch (r.int(0, 4)) {
    case 0:
      return BigInt(r.int(0, 300));
    case 1:
      return BigInt.asUintN(64, -BigInt(r.int(0, 300)));
    case 2:
      return lo;
    default:
      return x;
  }
}

/** A random non-empty abstract value at width w, with a member to start from. */
function randomScalar(r: Rng, w: Width): Scalar {
  const m = maxU(w);
  const a = rand64(r) & m, b = rand64(r) & m;
  const [lo, hi] = a < b ? [a, b] : [b, a];
  const toS = (x: bigint) => BigInt.asIntN(w, x);
  let s: Scalar;
  switch (r.int(0, 3)) {
    case 0: // a constant
      s = { tnum: { value: a, mask: 0n }, umin: a, umax: a, smin: toS(a), smax: toS(a) };
      break;
    case 1: // an unsigned range
      s = {
        tnum: { value: 0n, mask: m },
        umin: lo,
        umax: hi,
        smin: toS(0n) - (1n << BigInt(w - 1)),
        smax: (1n << BigInt(w - 1)) - 1n,
      };
      break;
    case 2: { // some known bits
      const mask = rand64(r) & m;
      s = {
        tnum: { value: a & ~mask & m, mask },
        umin: 0n,
        umax: m,
        smin: -(1n << BigInt(w - 1)),
        smax: (1n << BigInt(w - 1)) - 1n,
      };
      break;
    }
    default: { // a signed range
      const sa = toS(a), sb = toS(b);
      const [x, y] = sa < sb ? [sa, sb] : [sb, sa];
      s = { tnum: { value: 0n, mask: m }, umin: 0n, umax: m, smin: x, smax: y };
    }
  }
  return sync(s, w);
}

function member(s: Scalar, x: bigint, w: Width): boolean {
  const sx = BigInt.asIntN(w, x);
  return (x & ~s.tnum.mask & maxU(w)) === s.tnum.value && x >= s.umin && x <= s.umax &&
    sx >= s.smin && sx <= s.smax;
}

/** A member of s, by rejection sampling (undefined if none found). */
function sample(r: Rng, s: Scalar, w: Width): bigint | undefined {
  for (let i = 0; i < 200; i++) {
    let x: bigint;
    const k = r.int(0, 3);
    if (k === 0) x = s.umin;
    else if (k === 1) x = s.umax;
    else if (k === 2) x = BigInt.asUintN(w, s.smin + BigInt(r.int(0, 3)));
    else x = (s.tnum.value | (rand64(r) & s.tnum.mask)) & maxU(w);
    if (member(s, x, w)) return x;
  }
  return undefined;
}

function concrete(o: ScalarOp, a: bigint, b: bigint, w: Width): bigint {
  const W = BigInt(w), m = maxU(w);
  switch (o) {
    case "add":
      return (a + b) & m;
    case "sub":
      return (a - b) & m;
    case "mul":
      return (a * b) & m;
    case "and":
      return a & b;
    case "or":
      return a | b;
    case "xor":
      return a ^ b;
    case "lsh":
      return (a << (b % W)) & m;
    case "rsh":
      return a >> (b % W);
    case "arsh":
      return BigInt.asUintN(w, BigInt.asIntN(w, a) >> (b % W));
    case "neg":
      return (-a) & m;
    default:
      throw new Error(o);
  }
}

const OPS: ScalarOp[] = ["add", "sub", "mul", "and", "or", "xor", "lsh", "rsh", "arsh", "neg"];

Deno.test("scalar: every operation's result contains the concrete results", () => {
  const r = new Rng(42);
  let checked = 0;
  for (let i = 0; i < 4000; i++) {
    const w: Width = r.chance(0.5) ? 64 : 32;
    const o = r.pick(OPS);
    const A = randomScalar(r, w);
    const B = o === "lsh" || o === "rsh" || o === "arsh"
      ? sync({
        tnum: { value: BigInt(r.int(0, w - 1)), mask: 0n },
        umin: 0n,
        umax: maxU(w),
        smin: -(1n << BigInt(w - 1)),
        smax: (1n << BigInt(w - 1)) - 1n,
      }, w)
      : randomScalar(r, w);
    if (isEmpty(A) || isEmpty(B)) continue;
    const R = big(aluOp(o, fast(A), fast(B), w));
    if (!R) continue;
    for (let j = 0; j < 8; j++) {
      const a = sample(r, A, w), b = sample(r, B, w);
      if (a === undefined || b === undefined) continue;
      const c = concrete(o, a, b, w);
      ok(
        member(R, c, w),
        `${o}/${w}: ${a} op ${b} = ${c} not in ${
          JSON.stringify(R, (_, v) => typeof v === "bigint" ? v.toString(16) : v)
        }`,
      );
      checked++;
    }
  }
  ok(checked > 10000, `only ${checked} samples`);
});

Deno.test("scalar: 32-bit views and zero-extension are sound", () => {
  const r = new Rng(7);
  for (let i = 0; i < 3000; i++) {
    const A = randomScalar(r, 64);
    const a = sample(r, A, 64);
    if (a === undefined) continue;
    ok(member(low32(A), a & 0xffff_ffffn, 32));
    ok(member(zext32(low32(A)), a & 0xffff_ffffn, 64));
  }
});

const JUMPS = [
  op.BPF_JEQ,
  op.BPF_JNE,
  op.BPF_JGT,
  op.BPF_JGE,
  op.BPF_JLT,
  op.BPF_JLE,
  op.BPF_JSGT,
  op.BPF_JSGE,
  op.BPF_JSLT,
  op.BPF_JSLE,
  op.BPF_JSET,
];

function holds(o: number, a: bigint, b: bigint, w: Width): boolean {
  const sa = BigInt.asIntN(w, a), sb = BigInt.asIntN(w, b);
  switch (o) {
    case op.BPF_JEQ:
      return a === b;
    case op.BPF_JNE:
      return a !== b;
    case op.BPF_JGT:
      return a > b;
    case op.BPF_JGE:
      return a >= b;
    case op.BPF_JLT:
      return a < b;
    case op.BPF_JLE:
      return a <= b;
    case op.BPF_JSGT:
      return sa > sb;
    case op.BPF_JSGE:
      return sa >= sb;
    case op.BPF_JSLT:
      return sa < sb;
    case op.BPF_JSLE:
      return sa <= sb;
    default:
      return (a & b) !== 0n;
  }
}

Deno.test("branches: decisions hold for every member, refinements keep every satisfying pair", () => {
  const r = new Rng(9);
  let refinedChecks = 0;
  for (let i = 0; i < 4000; i++) {
    const o = r.pick(JUMPS);
    const jmp32 = r.chance(0.3);
    const A = randomScalar(r, 64), B = randomScalar(r, 64);
    const taken = branchTaken(fast(A), fast(B), o, jmp32);
    const w: Width = jmp32 ? 32 : 64;
    const refinedT = jmp32 ? undefined : refine(fast(A), fast(B), o)?.map((x) => big(x)!);
    const neg = negateJump(o);
    const refinedF = jmp32 || neg < 0
      ? undefined
      : refine(fast(A), fast(B), neg)?.map((x) => big(x)!);
    for (let j = 0; j < 8; j++) {
      const a = sample(r, A, 64), b = sample(r, B, 64);
      if (a === undefined || b === undefined) continue;
      const m = maxU(w);
      const h = holds(o, a & m, b & m, w);
      if (taken === 1) ok(h, `branch said always taken: ${a} ${o} ${b}`);
      if (taken === 0) ok(!h, `branch said never taken: ${a} ${o} ${b}`);
      const ref = h ? refinedT : refinedF;
      if (ref) {
        ok(
          member(ref[0], a, 64) && member(ref[1], b, 64),
          `refinement lost ${a}, ${b} for op ${o}`,
        );
        refinedChecks++;
      }
    }
  }
  ok(refinedChecks > 5000);
});

/** Values of a random scalar that actually has members (real registers always do). */
function inhabited(r: Rng, w: Width): Scalar | undefined {
  const s = randomScalar(r, w);
  return isEmpty(s) || sample(r, s, w) === undefined ? undefined : s;
}

Deno.test("scalar: operations on halves equal the bigint reference exactly", () => {
  const r = new Rng(1234);
  let compared = 0;
  for (let i = 0; i < 6000; i++) {
    const w: Width = r.chance(0.5) ? 64 : 32;
    const o = r.pick([...OPS, "other" as ScalarOp]);
    const A = inhabited(r, w);
    const B = o === "lsh" || o === "rsh" || o === "arsh"
      ? (r.chance(0.8) ? ref.known(BigInt(r.int(0, w + 2)), w) : inhabited(r, w))
      : r.chance(0.2)
      ? ref.known(rand64(r) & maxU(w), w)
      : inhabited(r, w);
    if (!A || !B) continue;
    deepEqual(big(fastSync(fast(A), w)), sync(A, w), `sync/${w}`);
    deepEqual(big(aluOp(o, fast(A), fast(B), w)), ref.aluOp(o, A, B, w), `${o}/${w}`);
    if (w === 64) {
      deepEqual(low32(A), ref.low32(A), "low32");
      for (const bytes of [1, 2, 4, 5, 8]) {
        deepEqual(big(truncate(fast(A), bytes)), ref.truncate(A, bytes), `truncate ${bytes}`);
      }
      deepEqual(scalarContains(fast(A), fast(B)), ref.scalarContains(A, B), "contains");
      deepEqual(fastIsEmpty(fast(A)), isEmpty(A), "isEmpty");
    } else {
      deepEqual(zext32(A), ref.zext32(A), "zext32");
    }
    compared++;
  }
  ok(compared > 3000, `only ${compared} comparisons`);
});

Deno.test("branches: decisions and refinements on halves equal the bigint reference exactly", () => {
  const r = new Rng(4321);
  let compared = 0;
  for (let i = 0; i < 6000; i++) {
    const o = r.pick(JUMPS);
    const jmp32 = r.chance(0.3);
    const A = inhabited(r, 64);
    const B = r.chance(0.3) ? ref.known(rand64(r), 64) : inhabited(r, 64);
    if (!A || !B) continue;
    deepEqual(branchTaken(fast(A), fast(B), o, jmp32), refBranch.branchTaken(A, B, o, jmp32));
    deepEqual(jmp32IsExact(fast(A), fast(B), o), refBranch.jmp32IsExact(A, B, o));
    deepEqual(refine(fast(A), fast(B), o)?.map(big), refBranch.refine(A, B, o), `refine ${o}`);
    compared++;
  }
  ok(compared > 3000, `only ${compared} comparisons`);
});
