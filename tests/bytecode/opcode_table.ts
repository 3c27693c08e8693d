/**
 * Every valid opcode byte, enumerated from the opcode tables (not listed by
 * hand), for tests that must cover the whole instruction set.
 */
import * as op from "../../bytecode/opcodes.ts";

const SIZES = [op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW];
const ALU_OPS = [
  op.BPF_ADD,
  op.BPF_SUB,
  op.BPF_MUL,
  op.BPF_DIV,
  op.BPF_OR,
  op.BPF_AND,
  op.BPF_LSH,
  op.BPF_RSH,
  op.BPF_MOD,
  op.BPF_XOR,
  op.BPF_MOV,
  op.BPF_ARSH,
];
const COND_JUMPS = Object.values(op.JMP_OP_CODE);

/** One valid opcode with a short description of its family. */
export interface OpcodeCase {
  code: number;
  family: string;
}

/** All opcodes the kernel accepts from user space (kernel 6.18). */
export function allValidOpcodes(): OpcodeCase[] {
  const out: OpcodeCase[] = [];
  const add = (code: number, family: string) => out.push({ code, family });
  add(op.BPF_LDDW, "lddw");
  for (const size of [op.BPF_B, op.BPF_H, op.BPF_W]) {
    add(op.BPF_LD | op.BPF_ABS | size, "ld_abs");
    add(op.BPF_LD | op.BPF_IND | size, "ld_ind");
    add(op.BPF_LDX | op.BPF_MEMSX | size, "ldx_sx");
  }
  for (const size of SIZES) {
    add(op.BPF_LDX | op.BPF_MEM | size, "ldx");
    add(op.BPF_ST | op.BPF_MEM | size, "st");
    add(op.BPF_STX | op.BPF_MEM | size, "stx");
    add(op.BPF_STX | op.BPF_ATOMIC | size, "atomic");
  }
  for (const cls of [op.BPF_ALU, op.BPF_ALU64]) {
    for (const aluOp of ALU_OPS) {
      add(cls | aluOp | op.BPF_K, "alu_k");
      add(cls | aluOp | op.BPF_X, "alu_x");
    }
    add(cls | op.BPF_NEG | op.BPF_K, "neg");
  }
  add(op.BPF_ALU | op.BPF_END | op.BPF_TO_LE, "end");
  add(op.BPF_ALU | op.BPF_END | op.BPF_TO_BE, "end");
  add(op.BPF_ALU64 | op.BPF_END | op.BPF_TO_LE, "bswap");
  for (const cls of [op.BPF_JMP, op.BPF_JMP32]) {
    add(cls | op.BPF_JA, cls === op.BPF_JMP ? "ja" : "gotol");
    for (const j of COND_JUMPS) {
      add(cls | j | op.BPF_K, "jmp_k");
      add(cls | j | op.BPF_X, "jmp_x");
    }
  }
  add(op.BPF_JMP | op.BPF_CALL, "call");
  add(op.BPF_JMP | op.BPF_EXIT, "exit");
  add(op.BPF_JMP | op.BPF_JCOND, "may_goto");
  return out;
}
