/**
 * Soundness of the range tracker, by sampling: for random abstract values
 * and concrete members of them, the result of every operation on the members
 * lies in the abstract result; branch refinements keep every pair that
 * satisfies the condition; decided branches are decided for every member.
 */
import { ok } from "node:assert/strict";
import * as op from "../../bytecode/opcodes.ts";
import { branchTaken, negateJump, refine } from "../../lib/verifier/branch.ts";
import {
  aluOp,
  isEmpty,
  low32,
  maxU,
  type Scalar,
  type ScalarOp,
  sync,
  type Width,
  zext32,
} from "../../lib/verifier/scalar.ts";
import { Rng } from "./generator.ts";

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
    const R = aluOp(o, A, B, w);
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
    const taken = branchTaken(A, B, o, jmp32);
    const w: Width = jmp32 ? 32 : 64;
    const refinedT = jmp32 ? undefined : refine(A, B, o);
    const neg = negateJump(o);
    const refinedF = jmp32 || neg < 0 ? undefined : refine(A, B, neg);
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
