/**
 * The running kernel prints every instruction it verifies (log level 2) with
 * its own print_bpf_insn(); our disassembler must print the same text. Loads
 * socket filter programs that cover the instruction classes, including the
 * kernel 6.6+ encodings (sdiv, movsx, ldsx, bswap, gotol) and 6.15+ ones
 * (load_acquire, store_release), and may_goto (6.9+), and compares line by line.
 */
import { assertEquals } from "./assert.ts";
import assert from "node:assert/strict";
import * as B from "../../bytecode/build.ts";
import { disassembleOne } from "../../bytecode/disasm.ts";
import { slotOffsets } from "../../bytecode/encode.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { loadProgram } from "../../lib/kernel/program.ts";
import { kernelTest } from "../support/kernel.ts";

const CLASSIC: Insn[] = [
  B.mov64Reg(6, 1),
  B.ldAbs("u8", 12),
  B.ldInd("u16", 6, 2),
  B.mov64Imm(1, -5),
  B.mov32Imm(2, 7),
  B.alu64Imm("add", 1, 3),
  B.alu64Reg("sub", 1, 2),
  B.alu32Reg("mul", 2, 2),
  B.alu64Imm("div", 1, 3),
  B.alu64Imm("mod", 1, 7),
  B.alu32Imm("or", 2, 0x10),
  B.alu64Imm("and", 1, 0xff),
  B.alu64Imm("lsh", 1, 2),
  B.alu64Imm("rsh", 1, 1),
  B.alu64Imm("arsh", 1, 1),
  B.alu64Reg("xor", 1, 2),
  B.neg64(1),
  B.neg32(2),
  B.toBe(1, 16),
  B.toLe(1, 32),
  B.toBe(1, 64),
  B.stx("u64", 10, 1, -8),
  B.st("u32", 10, -16, -3),
  B.st("u32", 10, -12, 0),
  B.stx("u16", 10, 2, -24),
  B.ldx("u64", 3, 10, -8),
  B.ldx("u32", 4, 10, -16),
  B.ldx("u16", 4, 10, -24),
  B.ldx("u8", 4, 10, -24),
  B.atomicAdd("u64", 10, 3, -8),
  B.atomic("or", "u64", 10, 3, -8),
  B.atomic("add", "u64", 10, 3, -8, true),
  B.atomic("xchg", "u64", 10, 3, -8),
  B.mov64Imm(0, 0),
  B.atomic("cmpxchg", "u64", 10, 3, -8),
  B.atomic("xor", "u32", 10, 4, -16, true),
  B.lddw(5, 0x1122334455667788n),
  B.jmpImm("jgt", 5, 3, 1),
  B.ja(0),
  B.jmpReg("jsge", 1, 2, 0),
  B.jmp32Imm("jne", 1, -1, 0),
  B.jmp32Reg("jlt", 1, 2, 0),
  B.jmpImm("jset", 1, 4, 0),
  B.call(7),
  B.call(5),
  B.mov64Imm(0, 0),
  B.exit(),
];

const MODERN: Insn[] = [
  B.mov64Imm(1, -5),
  B.mov64Imm(2, 3),
  B.alu64Reg("sdiv", 1, 2),
  B.alu64Imm("smod", 1, 3),
  B.alu32Reg("sdiv", 1, 2),
  B.movSx64(3, 1, 8),
  B.movSx64(3, 1, 16),
  B.movSx64(3, 1, 32),
  B.movSx32(3, 1, 8),
  B.bswap(3, 16),
  B.bswap(3, 32),
  B.bswap(3, 64),
  B.stx("u64", 10, 3, -8),
  B.ldxSx("u8", 4, 10, -8),
  B.ldxSx("u16", 4, 10, -8),
  B.ldxSx("u32", 4, 10, -8),
  B.loadAcquire("u64", 5, 10, -8),
  B.storeRelease("u32", 10, 5, -8),
  B.gotol(0),
  B.mayGoto(0),
  B.callLocal(2),
  B.mov64Imm(0, 0),
  B.exit(),
  B.mov64Imm(0, 0),
  B.exit(),
];

/** Every `N: (xx) text` line of a level-2 verifier log, state annotations removed. */
function loggedInstructions(log: string): [number, string][] {
  const out: [number, string][] = [];
  for (const line of log.split("\n")) {
    const m = /^(\d+): (\([0-9a-f]{2}\) .*?)(?:\s+;.*)?$/.exec(line);
    if (m) out.push([Number(m[1]), m[2]]);
  }
  return out;
}

function compareWithKernel(name: string, insns: Insn[]) {
  const prog = loadProgram({ name, type: "socket_filter", insns, logLevel: 2 });
  try {
    const ours = new Map(slotOffsets(insns).map((slot, i) => [slot, disassembleOne(insns[i])]));
    const logged = loggedInstructions(prog.verifierLog);
    assert.ok(logged.length >= insns.length - 2, `verifier logged ${logged.length} instructions`);
    const seen = new Set<number>();
    for (const [slot, text] of logged) {
      assertEquals(ours.get(slot), text, `slot ${slot}`);
      seen.add(slot);
    }
    // Every instruction the verifier walked was compared; the two dead exits may be skipped.
    assert.ok(seen.size >= insns.length - 2, `compared ${seen.size} of ${insns.length}`);
  } finally {
    prog.close();
  }
}

kernelTest("disasm matches the kernel verifier log: classic instructions", () => {
  compareWithKernel("bc_disasm_v1", CLASSIC);
});

kernelTest("disasm matches the kernel verifier log: v4 and acquire/release", () => {
  compareWithKernel("bc_disasm_v4", MODERN);
});
