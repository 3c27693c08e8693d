/**
 * The DSL's arithmetic macros, run in the real kernel (BPF_PROG_TEST_RUN on a
 * raw_tracepoint program): log2 and clamp compute what libbpf-tools' log2l()
 * and the slot clamp compute, for values across the whole u64 range.
 */
import { deepEqual } from "node:assert/strict";
import { exit } from "../../../bytecode/build.ts";
import { Probe } from "../../../lib/dsl/program.ts";
import { r0, r1, r7, r8 } from "../../../lib/dsl/registers.ts";
import { loadProgram } from "../../../lib/kernel/program.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";
import { kernelTest } from "../../support/kernel.ts";

/** A raw_tracepoint program whose first argument is the input: no layouts needed. */
function argProgram(name: string): Probe {
  return new Probe(
    name,
    "raw_tracepoint",
    { kind: "raw_tracepoint", name: "sched_switch" },
    {
      kind: "args",
      event: "sched_switch",
      params: [{ name: "x", isPointer: false }],
      btfTyped: false,
    },
    {
      tracepoint: () => {
        throw new Error("unused");
      },
      structField: () => {
        throw new Error("unused");
      },
      tpBtf: () => {
        throw new Error("unused");
      },
    },
    8,
  );
}

function log2l(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length - 1;
}

kernelTest("DSL log2 and clamp: kernel results match log2l() over the u64 range", () => {
  const p = argProgram("dsl_log2");
  p.ctx(r7, "x").log2(r8, r7, r1).clamp(r8, 25).mov(r0, r8).emit(exit());
  using prog = loadProgram({ name: "dsl_log2", type: "raw_tracepoint", insns: p.build().insns });
  const inputs: bigint[] = [
    0n,
    1n,
    2n,
    3n,
    4n,
    1000n,
    65535n,
    65536n,
    2n ** 25n - 1n,
    2n ** 25n,
    2n ** 26n,
  ];
  for (let b = 0n; b < 64n; b++) inputs.push(2n ** b, 2n ** b + 1n, 2n ** b - 1n);
  const got: number[] = [], want: number[] = [];
  for (const x of inputs) {
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, BigInt.asUintN(64, x), true);
    got.push(testRun(prog, ctx));
    want.push(Math.min(log2l(BigInt.asUintN(64, x)), 25));
  }
  deepEqual(got, want);
});
