/**
 * Which opcode bytes the kernel accepts (as of Linux 6.18), each with the
 * family it belongs to. Built from the opcode tables, not listed by hand.
 *
 * Validity of the opcode byte only: whether the other fields fit the opcode
 * (src 0 for K sources, imm 16/32/64 for byte swaps, a known atomic op...) is
 * the verifier's business.
 *
 * @example
 * ```ts
 * import { opcodeFamily } from "./valid.ts";
 * opcodeFamily(0x85); // "call"
 * opcodeFamily(0x8f); // undefined: neg takes no register source
 * ```
 *
 * @module
 */

import * as op from "./opcodes.ts";

/** The families of valid opcodes. */
export type OpcodeFamily =
  | "lddw"
  | "ld_abs"
  | "ld_ind"
  | "ldx"
  | "ldx_sx"
  | "st"
  | "stx"
  | "atomic"
  | "alu_k"
  | "alu_x"
  | "neg"
  | "end"
  | "bswap"
  | "ja"
  | "gotol"
  | "jmp_k"
  | "jmp_x"
  | "call"
  | "exit"
  | "may_goto";

const SIZES = [op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW];
const BINARY_ALU_OPS = [
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

function buildTable(): Map<number, OpcodeFamily> {
  const t = new Map<number, OpcodeFamily>();
  t.set(op.BPF_LDDW, "lddw");
  for (const size of [op.BPF_B, op.BPF_H, op.BPF_W]) {
    t.set(op.BPF_LD | op.BPF_ABS | size, "ld_abs");
    t.set(op.BPF_LD | op.BPF_IND | size, "ld_ind");
    t.set(op.BPF_LDX | op.BPF_MEMSX | size, "ldx_sx");
  }
  for (const size of SIZES) {
    t.set(op.BPF_LDX | op.BPF_MEM | size, "ldx");
    t.set(op.BPF_ST | op.BPF_MEM | size, "st");
    t.set(op.BPF_STX | op.BPF_MEM | size, "stx");
    // u8/u16 atomics exist only as load-acquire / store-release.
    t.set(op.BPF_STX | op.BPF_ATOMIC | size, "atomic");
  }
  for (const cls of [op.BPF_ALU, op.BPF_ALU64]) {
    for (const aluOp of BINARY_ALU_OPS) {
      t.set(cls | aluOp | op.BPF_K, "alu_k");
      t.set(cls | aluOp | op.BPF_X, "alu_x");
    }
    t.set(cls | op.BPF_NEG | op.BPF_K, "neg");
  }
  t.set(op.BPF_ALU | op.BPF_END | op.BPF_TO_LE, "end");
  t.set(op.BPF_ALU | op.BPF_END | op.BPF_TO_BE, "end");
  t.set(op.BPF_BSWAP, "bswap");
  for (const cls of [op.BPF_JMP, op.BPF_JMP32]) {
    t.set(cls | op.BPF_JA, cls === op.BPF_JMP ? "ja" : "gotol");
    for (const j of Object.values(op.JMP_OP_CODE)) {
      t.set(cls | j | op.BPF_K, "jmp_k");
      t.set(cls | j | op.BPF_X, "jmp_x");
    }
  }
  t.set(op.BPF_JMP | op.BPF_CALL, "call");
  t.set(op.BPF_JMP | op.BPF_EXIT, "exit");
  t.set(op.BPF_JMP | op.BPF_JCOND, "may_goto");
  return t;
}

const TABLE = buildTable();

/** Every valid opcode byte, ascending. */
export const VALID_OPCODES: readonly number[] = [...TABLE.keys()].sort((a, b) => a - b);

/** The family of a valid opcode byte; undefined for bytes the kernel rejects. */
export function opcodeFamily(code: number): OpcodeFamily | undefined {
  return TABLE.get(code);
}

/** Is this a byte the kernel accepts as an opcode? */
export function isValidOpcode(code: number): boolean {
  return TABLE.has(code);
}
