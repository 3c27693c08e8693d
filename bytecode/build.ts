/**
 * Small constructors that each return one {@link Insn}. They check their
 * operands (register numbers, 16-bit offsets, 32-bit immediates) so that a
 * bad value fails where it is written, not later in the encoder or kernel.
 *
 * Immediates accept the signed range of 32 bits and, for convenience, the
 * unsigned one too (`0xffffffff` is stored as `-1`, as the kernel sees it).
 *
 * @example
 * ```ts
 * import { call, exit, mov64Imm } from "./build.ts";
 * const prog = [call(14), mov64Imm(0, 0), exit()];
 * ```
 *
 * @module
 */

import type { Insn } from "./insn.ts";
import {
  ALU_OP_CODE,
  type AluOp,
  ATOMIC_OP_CODE,
  type AtomicOp,
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDDW,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MAY_GOTO,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOV,
  BPF_NEG,
  BPF_OFF_SIGNED,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
  JMP_OP_CODE,
  type JmpOp,
  type SignedAluOp,
  SIZE_CODE,
  type SizeName,
} from "./opcodes.ts";

function checkReg(what: string, r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 10) {
    throw new RangeError(`${what} register must be 0..10, got ${r}`);
  }
  return r;
}

function checkOff(off: number): number {
  if (!Number.isInteger(off) || off < -0x8000 || off > 0x7fff) {
    throw new RangeError(`offset must be a signed 16-bit integer, got ${off}`);
  }
  return off;
}

/** Normalizes a 32-bit immediate to its signed form; accepts -2^31 .. 2^32-1. */
function checkImm(imm: number): number {
  if (!Number.isInteger(imm) || imm < -0x80000000 || imm > 0xffffffff) {
    throw new RangeError(`immediate must fit in 32 bits, got ${imm}`);
  }
  return imm | 0;
}

/**
 * Builds any instruction from its raw fields, with range checks. The escape
 * hatch for encodings no named constructor covers. `imm2` is the second
 * slot's immediate, for `lddw` (opcode 0x18) only.
 */
export function makeInsn(
  code: number,
  dst: number,
  src: number,
  off: number,
  imm: number,
  imm2?: number,
): Insn {
  if (!Number.isInteger(code) || code < 0 || code > 0xff) {
    throw new RangeError(`opcode must be a byte, got ${code}`);
  }
  if (!Number.isInteger(src) || src < 0 || src > 15) {
    throw new RangeError(`src field must be 0..15, got ${src}`);
  }
  if (!Number.isInteger(dst) || dst < 0 || dst > 15) {
    throw new RangeError(`dst field must be 0..15, got ${dst}`);
  }
  const insn: Insn = { code, dst, src, off: checkOff(off), imm: checkImm(imm) };
  if (code === BPF_LDDW) insn.imm2 = checkImm(imm2 ?? 0);
  else if (imm2 !== undefined) throw new RangeError("imm2 is only for lddw (opcode 0x18)");
  return insn;
}

function alu(
  cls: number,
  op: AluOp | SignedAluOp,
  dst: number,
  src: number | null,
  imm: number,
): Insn {
  const bits = ALU_OP_CODE[op];
  if (bits === undefined) throw new RangeError(`unknown ALU op "${op}"`);
  checkReg("destination", dst);
  // neg is unary: the kernel only accepts the K form with src 0 and imm 0.
  if (op === "neg") return { code: cls | BPF_NEG | BPF_K, dst, src: 0, off: 0, imm: 0 };
  const off = op === "sdiv" || op === "smod" ? BPF_OFF_SIGNED : 0;
  if (src === null) return { code: cls | bits | BPF_K, dst, src: 0, off, imm: checkImm(imm) };
  return { code: cls | bits | BPF_X, dst, src: checkReg("source", src), off, imm: 0 };
}

/** `dst = src` (64-bit). */
export function mov64Reg(dst: number, src: number): Insn {
  return {
    code: BPF_ALU64 | BPF_MOV | BPF_X,
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: 0,
    imm: 0,
  };
}

/** `dst = imm` (64-bit, the immediate is sign-extended). */
export function mov64Imm(dst: number, imm: number): Insn {
  return {
    code: BPF_ALU64 | BPF_MOV | BPF_K,
    dst: checkReg("destination", dst),
    src: 0,
    off: 0,
    imm: checkImm(imm),
  };
}

/** `wdst = wsrc` (32-bit; the upper half of dst becomes zero). */
export function mov32Reg(dst: number, src: number): Insn {
  return {
    code: BPF_ALU | BPF_MOV | BPF_X,
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: 0,
    imm: 0,
  };
}

/** `wdst = imm` (32-bit; the upper half of dst becomes zero). */
export function mov32Imm(dst: number, imm: number): Insn {
  return {
    code: BPF_ALU | BPF_MOV | BPF_K,
    dst: checkReg("destination", dst),
    src: 0,
    off: 0,
    imm: checkImm(imm),
  };
}

/** `dst = (s8/s16/s32) src`, sign-extending to 64 bits (kernel 6.6+). */
export function movSx64(dst: number, src: number, bits: 8 | 16 | 32): Insn {
  if (bits !== 8 && bits !== 16 && bits !== 32) throw new RangeError(`bad movsx width ${bits}`);
  return {
    code: BPF_ALU64 | BPF_MOV | BPF_X,
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: bits,
    imm: 0,
  };
}

/** `wdst = (s8/s16) wsrc`, sign-extending to 32 bits (kernel 6.6+). */
export function movSx32(dst: number, src: number, bits: 8 | 16): Insn {
  if (bits !== 8 && bits !== 16) throw new RangeError(`bad movsx width ${bits}`);
  return {
    code: BPF_ALU | BPF_MOV | BPF_X,
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: bits,
    imm: 0,
  };
}

/**
 * `dst op= src` (64-bit). `neg` ignores `src` (it is unary); `sdiv`/`smod`
 * are the signed forms (kernel 6.6+).
 */
export function alu64Reg(op: AluOp | SignedAluOp, dst: number, src: number): Insn {
  return alu(BPF_ALU64, op, dst, src, 0);
}

/** `dst op= imm` (64-bit, immediate sign-extended). `neg` ignores `imm`. */
export function alu64Imm(op: AluOp | SignedAluOp, dst: number, imm: number): Insn {
  return alu(BPF_ALU64, op, dst, null, imm);
}

/** `wdst op= wsrc` (32-bit; the upper half of dst becomes zero). */
export function alu32Reg(op: AluOp | SignedAluOp, dst: number, src: number): Insn {
  return alu(BPF_ALU, op, dst, src, 0);
}

/** `wdst op= imm` (32-bit; the upper half of dst becomes zero). */
export function alu32Imm(op: AluOp | SignedAluOp, dst: number, imm: number): Insn {
  return alu(BPF_ALU, op, dst, null, imm);
}

/** `dst = -dst` (64-bit). */
export function neg64(dst: number): Insn {
  return alu64Imm("neg", dst, 0);
}

/** `wdst = -wdst` (32-bit). */
export function neg32(dst: number): Insn {
  return alu32Imm("neg", dst, 0);
}

function endian(cls: number, dir: number, dst: number, bits: 16 | 32 | 64): Insn {
  if (bits !== 16 && bits !== 32 && bits !== 64) throw new RangeError(`bad swap width ${bits}`);
  return {
    code: cls | BPF_END | dir,
    dst: checkReg("destination", dst),
    src: 0,
    off: 0,
    imm: bits,
  };
}

/** `dst = le16/le32/le64 dst`: convert from host to little endian (a no-op on x86). */
export function toLe(dst: number, bits: 16 | 32 | 64): Insn {
  return endian(BPF_ALU, BPF_TO_LE, dst, bits);
}

/** `dst = be16/be32/be64 dst`: convert between host order and big endian (network order). */
export function toBe(dst: number, bits: 16 | 32 | 64): Insn {
  return endian(BPF_ALU, BPF_TO_BE, dst, bits);
}

/** `dst = bswap16/32/64 dst`: unconditional byte swap (kernel 6.6+). */
export function bswap(dst: number, bits: 16 | 32 | 64): Insn {
  return endian(BPF_ALU64, BPF_TO_LE, dst, bits);
}

/** `dst = *(size *)(src + off)`, zero-extended. */
export function ldx(size: SizeName, dst: number, src: number, off: number): Insn {
  return {
    code: BPF_LDX | BPF_MEM | SIZE_CODE[size],
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: checkOff(off),
    imm: 0,
  };
}

/** `dst = *(s8/s16/s32 *)(src + off)`, sign-extended to 64 bits (kernel 6.6+). */
export function ldxSx(size: "u8" | "u16" | "u32", dst: number, src: number, off: number): Insn {
  return { ...ldx(size, dst, src, off), code: BPF_LDX | BPF_MEMSX | SIZE_CODE[size] };
}

/** `*(size *)(dst + off) = src`. */
export function stx(size: SizeName, dst: number, src: number, off: number): Insn {
  return {
    code: BPF_STX | BPF_MEM | SIZE_CODE[size],
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: checkOff(off),
    imm: 0,
  };
}

/** `*(size *)(dst + off) = imm`. */
export function st(size: SizeName, dst: number, off: number, imm: number): Insn {
  return {
    code: BPF_ST | BPF_MEM | SIZE_CODE[size],
    dst: checkReg("destination", dst),
    src: 0,
    off: checkOff(off),
    imm: checkImm(imm),
  };
}

function checkAtomicSize(size: SizeName): number {
  if (size !== "u32" && size !== "u64") {
    throw new RangeError(`atomic operations are 32 or 64 bits wide, got ${size}`);
  }
  return SIZE_CODE[size];
}

/** `lock *(size *)(dst + off) += src` (no fetch): the classic counter increment. */
export function atomicAdd(size: "u32" | "u64", dst: number, src: number, off: number): Insn {
  return atomic("add", size, dst, src, off);
}

/**
 * Atomic read-modify-write of `*(size *)(dst + off)` with `src`. With `fetch`,
 * `src` receives the old value. `xchg` and `cmpxchg` always fetch (`cmpxchg`
 * compares with r0 and puts the old value in r0).
 */
export function atomic(
  op: AtomicOp,
  size: SizeName,
  dst: number,
  src: number,
  off: number,
  fetch = false,
): Insn {
  const bits = ATOMIC_OP_CODE[op];
  if (bits === undefined) throw new RangeError(`unknown atomic op "${op}"`);
  return {
    code: BPF_STX | BPF_ATOMIC | checkAtomicSize(size),
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: checkOff(off),
    imm: fetch ? bits | BPF_FETCH : bits,
  };
}

/** `dst = load_acquire((size *)(src + off))` (kernel 6.15+). */
export function loadAcquire(size: SizeName, dst: number, src: number, off: number): Insn {
  return {
    code: BPF_STX | BPF_ATOMIC | SIZE_CODE[size],
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: checkOff(off),
    imm: BPF_LOAD_ACQ,
  };
}

/** `store_release((size *)(dst + off), src)` (kernel 6.15+). */
export function storeRelease(size: SizeName, dst: number, src: number, off: number): Insn {
  return {
    code: BPF_STX | BPF_ATOMIC | SIZE_CODE[size],
    dst: checkReg("destination", dst),
    src: checkReg("source", src),
    off: checkOff(off),
    imm: BPF_STORE_REL,
  };
}

function jmp(
  cls: number,
  op: JmpOp,
  dst: number,
  src: number | null,
  imm: number,
  off: number,
): Insn {
  const bits = JMP_OP_CODE[op];
  if (bits === undefined) throw new RangeError(`unknown jump op "${op}"`);
  checkReg("destination", dst);
  if (src === null) {
    return { code: cls | bits | BPF_K, dst, src: 0, off: checkOff(off), imm: checkImm(imm) };
  }
  return {
    code: cls | bits | BPF_X,
    dst,
    src: checkReg("source", src),
    off: checkOff(off),
    imm: 0,
  };
}

/** `if dst op imm goto pc+off` (64-bit compare, immediate sign-extended). */
export function jmpImm(op: JmpOp, dst: number, imm: number, off: number): Insn {
  return jmp(BPF_JMP, op, dst, null, imm, off);
}

/** `if dst op src goto pc+off` (64-bit compare). */
export function jmpReg(op: JmpOp, dst: number, src: number, off: number): Insn {
  return jmp(BPF_JMP, op, dst, src, 0, off);
}

/** `if wdst op imm goto pc+off` (32-bit compare). */
export function jmp32Imm(op: JmpOp, dst: number, imm: number, off: number): Insn {
  return jmp(BPF_JMP32, op, dst, null, imm, off);
}

/** `if wdst op wsrc goto pc+off` (32-bit compare). */
export function jmp32Reg(op: JmpOp, dst: number, src: number, off: number): Insn {
  return jmp(BPF_JMP32, op, dst, src, 0, off);
}

/** `goto pc+off`: `off` counts slots from the next instruction. */
export function ja(off: number): Insn {
  return { code: BPF_JMP | BPF_JA, dst: 0, src: 0, off: checkOff(off), imm: 0 };
}

/** `gotol pc+imm`: unconditional jump with a 32-bit offset (kernel 6.6+). */
export function gotol(imm: number): Insn {
  return { code: BPF_JMP32 | BPF_JA, dst: 0, src: 0, off: 0, imm: checkImm(imm) };
}

/** `may_goto pc+off`: bounded-loop escape hatch (kernel 6.9+). */
export function mayGoto(off: number): Insn {
  return { code: BPF_JMP | BPF_JCOND, dst: 0, src: BPF_MAY_GOTO, off: checkOff(off), imm: 0 };
}

/** `call helperId`: call a BPF helper by its number (see helpers.ts). */
export function call(helperId: number): Insn {
  return { code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: checkImm(helperId) };
}

/** `call pc+relativeOff`: bpf-to-bpf call; the target is slot `pc + 1 + relativeOff`. */
export function callLocal(relativeOff: number): Insn {
  return {
    code: BPF_JMP | BPF_CALL,
    dst: 0,
    src: BPF_PSEUDO_CALL,
    off: 0,
    imm: checkImm(relativeOff),
  };
}

/** `call kernel-function`: call a kfunc by its vmlinux BTF id. */
export function callKfunc(btfId: number): Insn {
  return {
    code: BPF_JMP | BPF_CALL,
    dst: 0,
    src: BPF_PSEUDO_KFUNC_CALL,
    off: 0,
    imm: checkImm(btfId),
  };
}

/** `exit`: return r0. */
export function exit(): Insn {
  return { code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 };
}

function wide(dst: number, src: number, imm: number, imm2: number): Insn {
  return {
    code: BPF_LDDW,
    dst: checkReg("destination", dst),
    src,
    off: 0,
    imm: checkImm(imm),
    imm2: checkImm(imm2),
  };
}

/**
 * `dst = value` for any 64-bit value (two slots). Accepts -2^63 .. 2^64-1;
 * negative values are stored in two's complement.
 */
export function lddw(dst: number, value: bigint): Insn {
  if (value < -(1n << 63n) || value >= 1n << 64n) {
    throw new RangeError(`lddw value must fit in 64 bits, got ${value}`);
  }
  const bits = BigInt.asUintN(64, value);
  const lo = Number(BigInt.asIntN(32, bits));
  const hi = Number(BigInt.asIntN(32, bits >> 32n));
  return wide(dst, 0, lo, hi);
}

/** `dst = map` by file descriptor (BPF_PSEUDO_MAP_FD); the kernel substitutes the pointer. */
export function ldMapFd(dst: number, fd: number): Insn {
  return wide(dst, BPF_PSEUDO_MAP_FD, fd, 0);
}

/** `dst = &map.value[0] + offset` by file descriptor (BPF_PSEUDO_MAP_VALUE, array maps). */
export function ldMapValue(dst: number, fd: number, offset: number): Insn {
  return wide(dst, BPF_PSEUDO_MAP_VALUE, fd, offset);
}

/** `dst = map` by index into the load's `fd_array` (BPF_PSEUDO_MAP_IDX). */
export function ldMapIdx(dst: number, index: number): Insn {
  return wide(dst, BPF_PSEUDO_MAP_IDX, index, 0);
}

/** `dst = &map.value[0] + offset` by `fd_array` index (BPF_PSEUDO_MAP_IDX_VALUE). */
export function ldMapIdxValue(dst: number, index: number, offset: number): Insn {
  return wide(dst, BPF_PSEUDO_MAP_IDX_VALUE, index, offset);
}

/** `dst = &kernel_variable` by vmlinux BTF id (BPF_PSEUDO_BTF_ID). */
export function ldBtfId(dst: number, btfId: number): Insn {
  return wide(dst, BPF_PSEUDO_BTF_ID, btfId, 0);
}

/** `dst = &function` of a bpf-to-bpf function at slot `pc + 1 + relativeOff` (callbacks). */
export function ldFunc(dst: number, relativeOff: number): Insn {
  return wide(dst, BPF_PSEUDO_FUNC, relativeOff, 0);
}

/** Legacy packet load `r0 = *(size *)skb[imm]` (socket filters only). */
export function ldAbs(size: "u8" | "u16" | "u32", imm: number): Insn {
  return { code: BPF_LD | BPF_ABS | SIZE_CODE[size], dst: 0, src: 0, off: 0, imm: checkImm(imm) };
}

/** Legacy packet load `r0 = *(size *)skb[src + imm]` (socket filters only). */
export function ldInd(size: "u8" | "u16" | "u32", src: number, imm: number): Insn {
  return {
    code: BPF_LD | BPF_IND | SIZE_CODE[size],
    dst: 0,
    src: checkReg("source", src),
    off: 0,
    imm: checkImm(imm),
  };
}
