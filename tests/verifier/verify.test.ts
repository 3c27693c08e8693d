/**
 * The public API: diagnostics carry the slot index, the disassembled
 * instruction and the DSL origin; inputs may be bytes or instructions.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import * as B from "../../bytecode/build.ts";
import { encode } from "../../bytecode/encode.ts";
import { formatDiagnostic, verifyProgram } from "../../lib/verifier/built.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import {
  DIAGNOSTIC_CODES,
  type KernelTypes,
  SUPPORTED_PROG_TYPES,
  UnsupportedProgramTypeError,
  verify,
} from "../../lib/verifier/mod.ts";

Deno.test("verify: a diagnostic names slot, instruction and DSL origin", () => {
  const insns = [
    { ...B.lddw(1, 5n), origin: "tools/x.ts:10" },
    { ...B.ldx("u64", 0, 2, 0), origin: "tools/x.ts:11" },
    B.exit(),
  ];
  const r = verify(insns, { progType: "tracepoint" });
  equal(r.ok, false);
  const d = r.diagnostics[0];
  equal(d.code, "uninit-register");
  equal(d.index, 2, "the lddw takes slots 0 and 1");
  equal(d.insn, "r0 = *(u64 *)(r2 +0)");
  equal(d.origin, "tools/x.ts:11");
  ok(formatDiagnostic("prog", d).includes("tools/x.ts:11"));
});

Deno.test("verify: bytes and instructions give the same verdict", () => {
  const insns = [B.mov64Imm(0, 0), B.exit()];
  deepEqual(verify(encode(insns), { progType: "kprobe" }), verify(insns, { progType: "kprobe" }));
  const truncated = verify(new Uint8Array(12), { progType: "kprobe" });
  equal(truncated.diagnostics[0].code, "invalid-opcode");
});

Deno.test("verify: maps by fd, by instruction index, and missing", () => {
  const prog = [
    B.st("u64", 10, -8, 0),
    B.mov64Reg(2, 10),
    B.alu64Imm("add", 2, -8),
    B.ldMapFd(1, 42),
    B.call(1),
    B.mov64Imm(0, 0),
    B.exit(),
  ];
  const map = { type: "hash", keySize: 8, valueSize: 8, maxEntries: 4 } as const;
  ok(verify(prog, { progType: "tracepoint", maps: { 42: map } }).ok);
  ok(verify(prog, { progType: "tracepoint", maps: new Map([[42, map]]) }).ok);
  ok(verify(prog, { progType: "tracepoint", mapRefs: [{ index: 3, map }] }).ok);
  equal(verify(prog, { progType: "tracepoint" }).diagnostics[0].code, "unknown-map");
  ok(
    verifyProgram({
      name: "p",
      type: "tracepoint",
      insns: prog,
      mapRefs: [{ index: 3, map }],
      attach: { kind: "tracepoint" },
    }).ok,
  );
});

Deno.test("verify: every code is documented once", () => {
  equal(new Set(DIAGNOSTIC_CODES).size, DIAGNOSTIC_CODES.length);
});

Deno.test("verify: pointer leaks can be allowed explicitly", () => {
  const prog = [B.mov64Reg(0, 10), B.exit()];
  equal(verify(prog, { progType: "tracepoint" }).diagnostics[0].code, "bad-return-value");
  const store = [B.stx("u64", 10, 10, -8), B.mov32Reg(0, 10), B.exit()];
  equal(verify(store, { progType: "tracepoint" }).diagnostics[0].code, "pointer-leak");
  ok(verify(store, { progType: "tracepoint", allowPointerLeaks: true }).ok);
});

Deno.test("verify: an unsupported program type is refused up front, context used or not", () => {
  const touchesCtx = [B.ldx("u32", 0, 1, 0), B.exit()];
  const ignoresCtx = [B.mov64Imm(0, 0), B.exit()];
  for (const type of ["xdp", "sched_cls", "lsm"]) {
    for (const insns of [touchesCtx, ignoresCtx]) {
      throws(
        () => verify(insns, { progType: type as ProgTypeName }),
        (e: unknown) =>
          e instanceof UnsupportedProgramTypeError && e.progType === type &&
          e.message.includes(`"${type}"`) && e.message.includes("tracepoint"),
      );
    }
  }
  for (const type of SUPPORTED_PROG_TYPES) {
    equal(typeof verify(ignoresCtx, { progType: type }).ok, "boolean");
  }
});

Deno.test("verify: task pointers from RCU-safe fields may go to helpers, others may not", () => {
  // A made-up layout: real_parent at 16, parent at 24 (the kernel's own comes from BTF).
  const fields: Record<number, string> = { 16: "real_parent", 24: "parent" };
  const kernelTypes: KernelTypes = {
    structSize: (name) => name === "task_struct" ? 64 : undefined,
    access: (_name, off) =>
      fields[off]
        ? { kind: "pointer", struct: "task_struct", field: `task_struct.${fields[off]}` }
        : { kind: "scalar" },
  };
  const program = (off: number) => [
    B.call(158), // bpf_get_current_task_btf: trusted
    B.ldx("u64", 1, 0, off),
    B.mov64Reg(2, 10),
    B.alu64Imm("add", 2, -64),
    B.mov64Imm(3, 64),
    B.mov64Imm(4, 0),
    B.call(141), // bpf_get_task_stack
    B.mov64Imm(0, 0),
    B.exit(),
  ];
  const opts = { progType: "kprobe", kernelTypes } as const;
  equal(verify(program(16), opts).ok, true);
  equal(verify(program(24), opts).diagnostics[0]?.code, "bad-helper-arg");
});
