/**
 * Instruction encoding checks: known opcodes, reserved fields zero, register
 * numbers in range, no division by a constant zero, shifts within the width.
 * These mirror the field checks of the kernel's `do_check` and
 * `resolve_pseudo_ldimm64`, which reject a program before any path analysis.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";
import { isValidOpcode } from "../../bytecode/valid.ts";

const MAX_REG = 10;

/**
 * Problems the kernel finds in every instruction at load time, before any
 * path is explored (`resolve_pseudo_ldimm64`): unknown opcodes, reserved
 * fields of loads and of `lddw`. Other field checks happen when a path
 * reaches the instruction ({@link encodingProblem}), as in the kernel, so an
 * odd field in dead code is not an error.
 */
export function loadTimeProblem(insn: Insn): string | undefined {
  if (!isValidOpcode(insn.code)) return `unknown opcode 0x${hex(insn.code)}`;
  const cls = op.bpfClass(insn.code);
  if (cls === op.BPF_LDX || insn.code === op.BPF_LDDW) return encodingProblem(insn);
  return undefined;
}

/** Returns why the instruction is malformed, or undefined when it is well formed. */
export function encodingProblem(insn: Insn): string | undefined {
  const { code, dst, src, off, imm } = insn;
  const cls = op.bpfClass(code);
  switch (cls) {
    case op.BPF_ALU:
    case op.BPF_ALU64:
      return aluProblem(insn, cls) ?? regs(dst, op.bpfSrc(code) === op.BPF_X ? src : 0);
    case op.BPF_JMP:
    case op.BPF_JMP32:
      return jmpProblem(insn, cls) ?? regs(dst, op.bpfSrc(code) === op.BPF_X ? src : 0);
    case op.BPF_LDX: {
      const mode = op.bpfMode(code);
      if (mode !== op.BPF_MEM && mode !== op.BPF_MEMSX) return `unknown opcode 0x${hex(code)}`;
      if (mode === op.BPF_MEMSX && op.bpfSize(code) === op.BPF_DW) {
        return `unknown opcode 0x${hex(code)}`;
      }
      if (imm !== 0) return "BPF_LDX uses reserved fields (imm must be 0)";
      return regs(dst, src);
    }
    case op.BPF_ST:
      if (op.bpfMode(code) !== op.BPF_MEM) return `unknown opcode 0x${hex(code)}`;
      if (src !== 0) return "BPF_ST uses reserved fields (src must be 0)";
      return regs(dst);
    case op.BPF_STX: {
      const mode = op.bpfMode(code);
      if (mode === op.BPF_MEM) {
        if (imm !== 0) return "BPF_STX uses reserved fields (imm must be 0)";
        return regs(dst, src);
      }
      if (mode !== op.BPF_ATOMIC) return `unknown opcode 0x${hex(code)}`;
      return atomicProblem(insn) ?? regs(dst, src);
    }
    case op.BPF_LD: {
      if (code === op.BPF_LDDW) {
        if (off !== 0) return "invalid lddw: off must be 0";
        if (src > op.BPF_PSEUDO_MAP_IDX_VALUE) return `invalid lddw pseudo source ${src}`;
        return regs(dst);
      }
      const mode = op.bpfMode(code);
      if ((mode !== op.BPF_ABS && mode !== op.BPF_IND) || op.bpfSize(code) === op.BPF_DW) {
        return `unknown opcode 0x${hex(code)}`;
      }
      if (dst !== 0 || off !== 0 || (mode === op.BPF_ABS && src !== 0)) {
        return "BPF_LD_[ABS|IND] uses reserved fields";
      }
      return regs(src);
    }
  }
  return `unknown opcode 0x${hex(code)}`;
}

/** Why register numbers a and b are not registers (R0-R10), if they are not. */
function regs(a: number, b = 0): string | undefined {
  if (a > MAX_REG) return `R${a} is not a register (R0-R10)`;
  if (b > MAX_REG) return `R${b} is not a register (R0-R10)`;
  return undefined;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function aluProblem(insn: Insn, cls: number): string | undefined {
  const { code, src, off, imm } = insn;
  const o = op.bpfOp(code);
  const x = op.bpfSrc(code) === op.BPF_X;
  if (o > op.BPF_END) return `unknown opcode 0x${hex(code)}`;
  if (o === op.BPF_NEG) {
    if (x || src !== 0 || off !== 0 || imm !== 0) return "BPF_NEG uses reserved fields";
    return undefined;
  }
  if (o === op.BPF_END) {
    if (src !== 0 || off !== 0 || (imm !== 16 && imm !== 32 && imm !== 64)) {
      return "BPF_END uses reserved fields";
    }
    if (cls === op.BPF_ALU64 && x) return `unknown opcode 0x${hex(code)}`;
    return undefined;
  }
  if (o === op.BPF_MOV) {
    if (x) {
      const okOff = cls === op.BPF_ALU ? [0, 8, 16] : [0, 8, 16, 32];
      if (!okOff.includes(off) || imm !== 0) return "BPF_MOV uses reserved fields";
    } else if (src !== 0 || off !== 0) {
      return "BPF_MOV uses reserved fields";
    }
    return undefined;
  }
  const signedOk = o === op.BPF_DIV || o === op.BPF_MOD;
  if (off !== 0 && !(off === 1 && signedOk)) return "BPF_ALU uses reserved fields (off)";
  if (x) {
    if (imm !== 0) return "BPF_ALU uses reserved fields (imm must be 0)";
  } else {
    if (src !== 0) return "BPF_ALU uses reserved fields (src must be 0)";
    if ((o === op.BPF_DIV || o === op.BPF_MOD) && imm === 0) return "division by zero";
    if (o === op.BPF_LSH || o === op.BPF_RSH || o === op.BPF_ARSH) {
      const width = cls === op.BPF_ALU64 ? 64 : 32;
      if (imm < 0 || imm >= width) return `invalid shift ${imm} (must be 0..${width - 1})`;
    }
  }
  return undefined;
}

function jmpProblem(insn: Insn, cls: number): string | undefined {
  const { code, dst, src, off, imm } = insn;
  const o = op.bpfOp(code);
  const x = op.bpfSrc(code) === op.BPF_X;
  switch (o) {
    case op.BPF_CALL:
      if (cls === op.BPF_JMP32) return `unknown opcode 0x${hex(code)}`;
      if (x || dst !== 0 || (src !== op.BPF_PSEUDO_KFUNC_CALL && off !== 0)) {
        return "BPF_CALL uses reserved fields";
      }
      if (src !== 0 && src !== op.BPF_PSEUDO_CALL && src !== op.BPF_PSEUDO_KFUNC_CALL) {
        return "BPF_CALL uses reserved fields";
      }
      return undefined;
    case op.BPF_EXIT:
      if (cls === op.BPF_JMP32) return `unknown opcode 0x${hex(code)}`;
      if (x || imm !== 0 || src !== 0 || dst !== 0) return "BPF_EXIT uses reserved fields";
      return undefined;
    case op.BPF_JA:
      if (x || src !== 0 || dst !== 0) return "BPF_JA uses reserved fields";
      if (cls === op.BPF_JMP && imm !== 0) return "BPF_JA uses reserved fields (imm must be 0)";
      if (cls === op.BPF_JMP32 && off !== 0) return "gotol uses reserved fields (off must be 0)";
      return undefined;
    case op.BPF_JCOND:
      if (cls === op.BPF_JMP32) return `unknown opcode 0x${hex(code)}`;
      if (x || src !== op.BPF_MAY_GOTO || dst !== 0 || imm !== 0) {
        return "may_goto uses reserved fields";
      }
      return undefined;
    case 0xf0:
      return `unknown opcode 0x${hex(code)}`;
  }
  if (x ? imm !== 0 : src !== 0) return "conditional jump uses reserved fields";
  return undefined;
}

function atomicProblem(insn: Insn): string | undefined {
  const size = op.bpfSize(insn.code);
  const imm = insn.imm;
  if (imm === op.BPF_LOAD_ACQ || imm === op.BPF_STORE_REL) {
    // Load-acquire and store-release (Linux 6.15) take every width.
    if (insn.off < -0x8000) return "BPF_ATOMIC uses reserved fields";
    return undefined;
  }
  const fetchable = [op.BPF_ATOMIC_ADD, op.BPF_ATOMIC_AND, op.BPF_ATOMIC_OR, op.BPF_ATOMIC_XOR];
  const ok = fetchable.includes(imm) || fetchable.includes(imm & ~op.BPF_FETCH) ||
    imm === op.BPF_XCHG || imm === op.BPF_CMPXCHG;
  if (!ok) return `BPF_ATOMIC uses invalid atomic opcode 0x${hex(imm & 0xffff)}`;
  if (size !== op.BPF_W && size !== op.BPF_DW) return "BPF_ATOMIC needs a 4- or 8-byte size";
  if (insn.off < -0x8000) return "BPF_ATOMIC uses reserved fields";
  return undefined;
}
