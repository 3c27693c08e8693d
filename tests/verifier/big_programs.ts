/**
 * Corpus cases too large to write by hand: programs beyond the kernel's
 * size limit, and a program with more pending branches than the kernel
 * explores.
 *
 * @module
 */

import * as B from "../../bytecode/build.ts";
import type { Insn } from "../../bytecode/insn.ts";
import type { CorpusCase } from "./corpus.ts";

function big(name: string, insns: Insn[]): CorpusCase {
  return {
    name,
    source: "big_programs.ts",
    progType: "tracepoint",
    insns,
    expect: "too-complex",
    kernel: "reject",
  };
}

/** The generated cases (built on each call: about 1M instructions each). */
export function bigPrograms(): CorpusCase[] {
  const movs = new Array<Insn>(1_000_001).fill(B.mov64Imm(0, 0));
  const wide = new Array<Insn>(500_001).fill(B.lddw(1, 0x1234_5678_9abcn));
  const branches: Insn[] = [B.mov64Reg(6, 1), B.call(7), B.mov64Reg(1, 0)];
  for (let i = 0; i < 8200; i++) branches.push(B.jmpImm("jeq", 1, i, 0));
  return [
    big("million-and-one-movs", [...movs, B.exit()]),
    big("half-million-lddw", [...wide, B.mov64Imm(0, 0), B.exit()]),
    big("too-many-pending-branches", [...branches, B.mov64Imm(0, 0), B.exit()]),
  ];
}
