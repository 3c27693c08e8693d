/**
 * The BPF opcode vocabulary, with the numbers the kernel's uapi headers
 * (`linux/bpf_common.h`, `linux/bpf.h`) and RFC 9669 give them.
 *
 * An opcode byte is split three ways. For loads and stores:
 * `mode (3 bits) | size (2 bits) | class (3 bits)`; for arithmetic and jumps:
 * `op (4 bits) | source (1 bit) | class (3 bits)`.
 *
 * @module
 */

/** Class (the low 3 bits of every opcode): special loads (`lddw`, legacy packet access). */
export const BPF_LD = 0x00;
/** Load into a register from memory. */
export const BPF_LDX = 0x01;
/** Store an immediate to memory. */
export const BPF_ST = 0x02;
/** Store a register to memory (also atomics). */
export const BPF_STX = 0x03;
/** 32-bit arithmetic. */
export const BPF_ALU = 0x04;
/** 64-bit jumps, calls, exit. */
export const BPF_JMP = 0x05;
/** 32-bit jumps (compare the low halves of registers). */
export const BPF_JMP32 = 0x06;
/** 64-bit arithmetic. */
export const BPF_ALU64 = 0x07;

/** Extracts the class: `code & 0x07`. */
export function bpfClass(code: number): number {
  return code & 0x07;
}

/** Access size: 32-bit word. */
export const BPF_W = 0x00;
/** Access size: 16-bit half word. */
export const BPF_H = 0x08;
/** Access size: byte. */
export const BPF_B = 0x10;
/** Access size: 64-bit double word. */
export const BPF_DW = 0x18;

/** Extracts the size of a load or store: `code & 0x18`. */
export function bpfSize(code: number): number {
  return code & 0x18;
}

/** Mode: 64-bit immediate (`lddw`, with class LD). */
export const BPF_IMM = 0x00;
/** Mode: legacy packet access, absolute offset. */
export const BPF_ABS = 0x20;
/** Mode: legacy packet access, register-relative offset. */
export const BPF_IND = 0x40;
/** Mode: regular memory access. */
export const BPF_MEM = 0x60;
/** Mode: sign-extending load (LDX only, kernel 6.6+). */
export const BPF_MEMSX = 0x80;
/** Mode: atomic read-modify-write (STX only). */
export const BPF_ATOMIC = 0xc0;

/** Extracts the mode of a load or store: `code & 0xe0`. */
export function bpfMode(code: number): number {
  return code & 0xe0;
}

/** ALU op: `dst += src`. */
export const BPF_ADD = 0x00;
/** ALU op: `dst -= src`. */
export const BPF_SUB = 0x10;
/** ALU op: `dst *= src`. */
export const BPF_MUL = 0x20;
/** ALU op: `dst /= src` (unsigned; signed when `off` is 1). */
export const BPF_DIV = 0x30;
/** ALU op: `dst |= src`. */
export const BPF_OR = 0x40;
/** ALU op: `dst &= src`. */
export const BPF_AND = 0x50;
/** ALU op: `dst <<= src`. */
export const BPF_LSH = 0x60;
/** ALU op: `dst >>= src` (logical). */
export const BPF_RSH = 0x70;
/** ALU op: `dst = -dst` (source must be K, imm 0). */
export const BPF_NEG = 0x80;
/** ALU op: `dst %= src` (unsigned; signed when `off` is 1). */
export const BPF_MOD = 0x90;
/** ALU op: `dst ^= src`. */
export const BPF_XOR = 0xa0;
/** ALU op: `dst = src` (sign-extending when `off` is 8, 16 or 32). */
export const BPF_MOV = 0xb0;
/** ALU op: `dst s>>= src` (arithmetic shift). */
export const BPF_ARSH = 0xc0;
/** ALU op: byte swap / endianness conversion; width in `imm` (16, 32, 64). */
export const BPF_END = 0xd0;

/** Extracts the ALU or jump operation: `code & 0xf0`. */
export function bpfOp(code: number): number {
  return code & 0xf0;
}

/** Source: the immediate `imm`. */
export const BPF_K = 0x00;
/** Source: the register `src`. */
export const BPF_X = 0x08;
/** For BPF_END in class ALU: convert to little endian. */
export const BPF_TO_LE = 0x00;
/** For BPF_END in class ALU: convert to big endian. */
export const BPF_TO_BE = 0x08;
/** For BPF_END in class ALU64: unconditional byte swap (`bswap`, kernel 6.6+). */
export const BPF_BSWAP = BPF_ALU64 | BPF_END | BPF_TO_LE;

/** Extracts the source bit: `code & 0x08`. */
export function bpfSrc(code: number): number {
  return code & 0x08;
}

/** `off` value that turns DIV/MOD into their signed forms. */
export const BPF_OFF_SIGNED = 1;

/** Jump op: unconditional (`goto`; class JMP32 makes it `gotol` with a 32-bit `imm`). */
export const BPF_JA = 0x00;
/** Jump op: `==`. */
export const BPF_JEQ = 0x10;
/** Jump op: unsigned `>`. */
export const BPF_JGT = 0x20;
/** Jump op: unsigned `>=`. */
export const BPF_JGE = 0x30;
/** Jump op: `dst & src` is non-zero. */
export const BPF_JSET = 0x40;
/** Jump op: `!=`. */
export const BPF_JNE = 0x50;
/** Jump op: signed `>`. */
export const BPF_JSGT = 0x60;
/** Jump op: signed `>=`. */
export const BPF_JSGE = 0x70;
/** Jump op: call a helper, a bpf-to-bpf function or a kfunc. */
export const BPF_CALL = 0x80;
/** Jump op: return `r0`. */
export const BPF_EXIT = 0x90;
/** Jump op: unsigned `<`. */
export const BPF_JLT = 0xa0;
/** Jump op: unsigned `<=`. */
export const BPF_JLE = 0xb0;
/** Jump op: signed `<`. */
export const BPF_JSLT = 0xc0;
/** Jump op: signed `<=`. */
export const BPF_JSLE = 0xd0;
/** Jump op: conditional pseudo jump (`may_goto`, kernel 6.9+). */
export const BPF_JCOND = 0xe0;
/** `src` of a BPF_JCOND instruction: `may_goto`. */
export const BPF_MAY_GOTO = 0;

/** Atomic op (in `imm`): `*ptr += src`. */
export const BPF_ATOMIC_ADD = BPF_ADD;
/** Atomic op: `*ptr |= src`. */
export const BPF_ATOMIC_OR = BPF_OR;
/** Atomic op: `*ptr &= src`. */
export const BPF_ATOMIC_AND = BPF_AND;
/** Atomic op: `*ptr ^= src`. */
export const BPF_ATOMIC_XOR = BPF_XOR;
/** Atomic modifier: also return the old value in `src`. */
export const BPF_FETCH = 0x01;
/** Atomic op: exchange (always fetches). */
export const BPF_XCHG = 0xe0 | BPF_FETCH;
/** Atomic op: compare `r0` with `*ptr` and exchange if equal (always fetches into r0). */
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;
/** Atomic op: load-acquire (kernel 6.15+). */
export const BPF_LOAD_ACQ = 0x100;
/** Atomic op: store-release (kernel 6.15+). */
export const BPF_STORE_REL = 0x110;

/** `src` of `lddw`: `imm` is a map file descriptor; the kernel puts the map pointer. */
export const BPF_PSEUDO_MAP_FD = 1;
/** `src` of `lddw`: map fd in `imm`, offset into value 0 in `imm2` (array maps). */
export const BPF_PSEUDO_MAP_VALUE = 2;
/** `src` of `lddw`: `imm` is a BTF id of a kernel variable. */
export const BPF_PSEUDO_BTF_ID = 3;
/** `src` of `lddw`: `imm` is a relative slot offset of a bpf-to-bpf function. */
export const BPF_PSEUDO_FUNC = 4;
/** `src` of `lddw`: `imm` is an index into the load attribute's `fd_array`. */
export const BPF_PSEUDO_MAP_IDX = 5;
/** `src` of `lddw`: `fd_array` index plus a value offset in `imm2`. */
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

/** `src` of `call`: `imm` is the relative slot offset of a bpf-to-bpf function. */
export const BPF_PSEUDO_CALL = 1;
/** `src` of `call`: `imm` is the BTF id of a kernel function (kfunc). */
export const BPF_PSEUDO_KFUNC_CALL = 2;

/** Register 0: return values (of helpers and of the program). */
export const R0 = 0;
/** Register 1: first argument; the context pointer on entry. */
export const R1 = 1;
/** Register 2: second argument. */
export const R2 = 2;
/** Register 3: third argument. */
export const R3 = 3;
/** Register 4: fourth argument. */
export const R4 = 4;
/** Register 5: fifth argument. */
export const R5 = 5;
/** Register 6: callee-saved. */
export const R6 = 6;
/** Register 7: callee-saved. */
export const R7 = 7;
/** Register 8: callee-saved. */
export const R8 = 8;
/** Register 9: callee-saved. */
export const R9 = 9;
/** Register 10: read-only frame pointer; the stack grows down from it (512 bytes). */
export const R10 = 10;
/** Alias of R10. */
export const FP = R10;

/** The opcode of `lddw`, the only 16-byte instruction. */
export const BPF_LDDW = BPF_LD | BPF_DW | BPF_IMM;

/** Size names as the DSL and the disassembler spell them, and their opcode bits. */
export type SizeName = "u8" | "u16" | "u32" | "u64";

/** Size name to BPF_B/H/W/DW. */
export const SIZE_CODE: Readonly<Record<SizeName, number>> = {
  u8: BPF_B,
  u16: BPF_H,
  u32: BPF_W,
  u64: BPF_DW,
};

/** Size name to its width in bytes. */
export const SIZE_BYTES: Readonly<Record<SizeName, number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

/** BPF_B/H/W/DW to size name. */
export function sizeName(sizeCode: number): SizeName {
  switch (sizeCode & 0x18) {
    case BPF_B:
      return "u8";
    case BPF_H:
      return "u16";
    case BPF_W:
      return "u32";
    default:
      return "u64";
  }
}

/** The ALU operations the DSL names (binary ones plus `neg`). */
export type AluOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "or"
  | "and"
  | "lsh"
  | "rsh"
  | "neg"
  | "mod"
  | "xor"
  | "arsh";

/** Signed division and modulo (BPF_DIV / BPF_MOD with `off` = 1, kernel 6.6+). */
export type SignedAluOp = "sdiv" | "smod";

/** ALU op name to its opcode bits (`sdiv`/`smod` share DIV/MOD and set `off`). */
export const ALU_OP_CODE: Readonly<Record<AluOp | SignedAluOp, number>> = {
  add: BPF_ADD,
  sub: BPF_SUB,
  mul: BPF_MUL,
  div: BPF_DIV,
  or: BPF_OR,
  and: BPF_AND,
  lsh: BPF_LSH,
  rsh: BPF_RSH,
  neg: BPF_NEG,
  mod: BPF_MOD,
  xor: BPF_XOR,
  arsh: BPF_ARSH,
  sdiv: BPF_DIV,
  smod: BPF_MOD,
};

/** Conditional jump operations. */
export type JmpOp =
  | "jeq"
  | "jgt"
  | "jge"
  | "jset"
  | "jne"
  | "jsgt"
  | "jsge"
  | "jlt"
  | "jle"
  | "jslt"
  | "jsle";

/** Jump op name to its opcode bits. */
export const JMP_OP_CODE: Readonly<Record<JmpOp, number>> = {
  jeq: BPF_JEQ,
  jgt: BPF_JGT,
  jge: BPF_JGE,
  jset: BPF_JSET,
  jne: BPF_JNE,
  jsgt: BPF_JSGT,
  jsge: BPF_JSGE,
  jlt: BPF_JLT,
  jle: BPF_JLE,
  jslt: BPF_JSLT,
  jsle: BPF_JSLE,
};

/** Atomic read-modify-write operations. */
export type AtomicOp = "add" | "or" | "and" | "xor" | "xchg" | "cmpxchg";

/** Atomic op name to its `imm` value (without BPF_FETCH for add/or/and/xor). */
export const ATOMIC_OP_CODE: Readonly<Record<AtomicOp, number>> = {
  add: BPF_ATOMIC_ADD,
  or: BPF_ATOMIC_OR,
  and: BPF_ATOMIC_AND,
  xor: BPF_ATOMIC_XOR,
  xchg: BPF_XCHG,
  cmpxchg: BPF_CMPXCHG,
};
