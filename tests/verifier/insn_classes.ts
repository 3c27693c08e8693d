/**
 * Instruction classes the kernel accepts, as predicates: the corpus must hold
 * a valid program with each, and the differential test watches each one's
 * false reject rate, so that a verifier refusing a whole class fails a test.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";

const cls = (i: Insn) => i.code & 0x07;
const aluOp = (i: Insn) => i.code & 0xf0;
const isAlu = (i: Insn) => cls(i) === op.BPF_ALU || cls(i) === op.BPF_ALU64;
const atomic = (i: Insn) => cls(i) === op.BPF_STX && (i.code & 0xe0) === op.BPF_ATOMIC;
const jmp = (i: Insn) => cls(i) === op.BPF_JMP || cls(i) === op.BPF_JMP32;
const condJmp = (i: Insn) =>
  jmp(i) && ![op.BPF_JA, op.BPF_CALL, op.BPF_EXIT, op.BPF_JCOND].includes(aluOp(i));

/** Name and test of every class. */
export const INSN_CLASSES: readonly (readonly [string, (i: Insn) => boolean])[] = [
  ["alu64", (i) => cls(i) === op.BPF_ALU64 && aluOp(i) !== op.BPF_END],
  ["alu32", (i) => cls(i) === op.BPF_ALU && aluOp(i) !== op.BPF_END],
  [
    "sdiv/smod",
    (i) => isAlu(i) && (aluOp(i) === op.BPF_DIV || aluOp(i) === op.BPF_MOD) && i.off === 1,
  ],
  ["movsx", (i) => isAlu(i) && aluOp(i) === op.BPF_MOV && i.off !== 0],
  ["ldsx", (i) => cls(i) === op.BPF_LDX && (i.code & 0xe0) === op.BPF_MEMSX],
  ["bswap", (i) => cls(i) === op.BPF_ALU64 && aluOp(i) === op.BPF_END],
  ["be/le", (i) => cls(i) === op.BPF_ALU && aluOp(i) === op.BPF_END],
  ["ld_abs", (i) => cls(i) === op.BPF_LD && (i.code & 0xe0) === op.BPF_ABS],
  ["ld_ind", (i) => cls(i) === op.BPF_LD && (i.code & 0xe0) === op.BPF_IND],
  ["lddw", (i) => i.code === op.BPF_LDDW],
  ["ldx", (i) => cls(i) === op.BPF_LDX && (i.code & 0xe0) === op.BPF_MEM],
  ["st", (i) => cls(i) === op.BPF_ST],
  ["stx", (i) => cls(i) === op.BPF_STX && (i.code & 0xe0) === op.BPF_MEM],
  ["atomic", (i) => atomic(i) && (i.imm & op.BPF_FETCH) === 0 && i.imm < op.BPF_XCHG],
  ["atomic fetch", (i) => atomic(i) && (i.imm & op.BPF_FETCH) !== 0 && i.imm < op.BPF_XCHG],
  ["xchg/cmpxchg", (i) => atomic(i) && (i.imm === op.BPF_XCHG || i.imm === op.BPF_CMPXCHG)],
  ["acquire/release", (i) => atomic(i) && i.imm >= op.BPF_LOAD_ACQ],
  ["gotol", (i) => i.code === (op.BPF_JMP32 | op.BPF_JA)],
  ["may_goto", (i) => i.code === (op.BPF_JMP | op.BPF_JCOND)],
  ["jmp", (i) => cls(i) === op.BPF_JMP && condJmp(i)],
  ["jmp32", (i) => cls(i) === op.BPF_JMP32 && condJmp(i)],
  ["jset", (i) => condJmp(i) && aluOp(i) === op.BPF_JSET],
  ["call", (i) => cls(i) === op.BPF_JMP && aluOp(i) === op.BPF_CALL && i.src === 0],
  [
    "bpf-to-bpf call",
    (i) => cls(i) === op.BPF_JMP && aluOp(i) === op.BPF_CALL && i.src === op.BPF_PSEUDO_CALL,
  ],
];

/** Names of the classes the program uses. */
export function classesOf(insns: readonly Insn[]): Set<string> {
  const out = new Set<string>();
  for (const i of insns) for (const [name, test] of INSN_CLASSES) if (test(i)) out.add(name);
  return out;
}
