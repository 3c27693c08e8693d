/**
 * Disassembler that speaks the kernel's own syntax: the verifier log and
 * `bpftool prog dump xlated` print instructions through `print_bpf_insn()`
 * (kernel/bpf/disasm.c), and this module prints them the same way, character
 * for character: `(bf) r6 = r1`, `(7b) *(u64 *)(r10 -16) = r1`,
 * `(85) call bpf_get_current_pid_tgid#14`, `(18) r7 = map[id:5]`.
 *
 * Line numbers are slot indices (an `lddw` takes two), printed as bpftool
 * does (`% 4d: `), so jump targets `pc+N` can be followed by counting slots.
 *
 * @example
 * ```ts
 * import { disassemble } from "./disasm.ts";
 * import { call, exit, mov64Reg } from "./build.ts";
 * disassemble([mov64Reg(6, 1), call(14), exit()]);
 * // ["   0: (bf) r6 = r1", "   1: (85) call bpf_get_current_pid_tgid#14", "   2: (95) exit"]
 * ```
 *
 * @module
 */

import type { Insn } from "./insn.ts";
import { HELPERS } from "./helpers.ts";
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MAY_GOTO,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_OR,
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
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfClass,
  bpfMode,
  bpfOp,
  bpfSize,
  bpfSrc,
} from "./opcodes.ts";
import { slotsOf } from "./encode.ts";

/** How to print what the instruction stream alone cannot name. */
export interface DisasmOptions {
  /** Print the `(bf)` opcode column, as the kernel and bpftool do (default true). */
  opcodes?: boolean;
  /**
   * Names the map of a pseudo map load (`src` 1 or 2): gets `imm`, a file
   * descriptor in programs we build, a map id in a kernel `xlated` dump.
   * Default: `map[fd:N]`. Use {@link mapById} for xlated dumps.
   */
  mapName?: (ref: number) => string;
  /**
   * Names a helper call (`src` 0). Default: the helper table, `bpf_<name>`
   * (`unknown` for ids it does not know). In an xlated dump `imm` is an
   * address offset from `__bpf_call_base`; resolve it with kallsyms here.
   */
  helperName?: (imm: number) => string | undefined;
  /** Names a kfunc call (`src` 2) by BTF id. Default: `kernel-function`. */
  kfuncName?: (btfId: number) => string | undefined;
}

/** `mapName` for kernel xlated dumps, where the kernel put map ids: `map[id:N]`. */
export function mapById(id: number): string {
  return `map[id:${id >>> 0}]`;
}

function mapByFd(fd: number): string {
  return `map[fd:${fd >>> 0}]`;
}

const ALU_STRING: Record<number, string> = {
  0x0: "+=",
  0x1: "-=",
  0x2: "*=",
  0x3: "/=",
  0x4: "|=",
  0x5: "&=",
  0x6: "<<=",
  0x7: ">>=",
  0x8: "neg",
  0x9: "%=",
  0xa: "^=",
  0xb: "=",
  0xc: "s>>=",
  0xd: "endian",
};

const JMP_STRING: Record<number, string> = {
  0x0: "jmp",
  0x1: "==",
  0x2: ">",
  0x3: ">=",
  0x4: "&",
  0x5: "!=",
  0x6: "s>",
  0x7: "s>=",
  0x8: "call",
  0x9: "exit",
  0xa: "<",
  0xb: "<=",
  0xc: "s<",
  0xd: "s<=",
};

const LDST_STRING: Record<number, string> = { 0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64" };
const LDSX_STRING: Record<number, string> = { 0x00: "s32", 0x08: "s16", 0x10: "s8" };
const MOVSX_STRING: Record<number, string> = { 8: "(s8)", 16: "(s16)", 32: "(s32)" };
const ATOMIC_ALU_STRING: Record<number, string> = {
  [BPF_ADD]: "add",
  [BPF_AND]: "and",
  [BPF_OR]: "or",
  [BPF_XOR]: "xor",
};
const CLASS_STRING = ["ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64"];
/** `off` of `r = addr_space_cast(r, as, as)` (BPF arena, kernel 6.9+). */
const BPF_ADDR_SPACE_CAST = 1;
/** Kernel-internal speculation barrier, `BPF_ST | 0xc0`: shows up in xlated dumps. */
const BPF_NOSPEC = 0xc0;

function hex2(code: number): string {
  return code.toString(16).padStart(2, "0");
}

/** C's `%+d`. */
function signed(n: number): string {
  return n < 0 ? String(n) : `+${n}`;
}

/** C's `0x%x` of a 32-bit int. */
function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

function isAtomicAlu(imm: number): boolean {
  return imm === BPF_ADD || imm === BPF_AND || imm === BPF_OR || imm === BPF_XOR;
}

/** The instruction text after the `(xx) ` column, or a kernel-style `BUG_` marker. */
function body(insn: Insn, opts: DisasmOptions): { text: string; bug?: boolean } {
  const { code, dst, src, off, imm } = insn;
  const cls = bpfClass(code);
  const size = LDST_STRING[bpfSize(code)];

  if (cls === BPF_ALU || cls === BPF_ALU64) {
    const r = cls === BPF_ALU ? "w" : "r";
    const op = bpfOp(code);
    if (op === BPF_END) {
      if (cls === BPF_ALU64) return { text: `r${dst} = bswap${imm} r${dst}` };
      return { text: `r${dst} = ${bpfSrc(code) === BPF_TO_BE ? "be" : "le"}${imm} r${dst}` };
    }
    if (op === BPF_NEG) return { text: `${r}${dst} = -${r}${dst}` };
    if (code === (BPF_ALU64 | BPF_MOV | BPF_X) && off === BPF_ADDR_SPACE_CAST) {
      return { text: `r${dst} = addr_space_cast(r${src}, ${imm >>> 16}, ${imm & 0xffff})` };
    }
    const signedDiv = (op === BPF_DIV || op === BPF_MOD) && off === 1;
    const opText = signedDiv ? `s${ALU_STRING[op >> 4]}` : ALU_STRING[op >> 4];
    if (bpfSrc(code) === BPF_X) {
      const sx = op === BPF_MOV ? MOVSX_STRING[off] ?? "" : "";
      return { text: `${r}${dst} ${opText} ${sx}${r}${src}` };
    }
    return { text: `${r}${dst} ${opText} ${imm}` };
  }

  if (cls === BPF_STX) {
    const mode = bpfMode(code);
    const at = `(r${dst} ${signed(off)})`;
    if (mode === BPF_MEM) return { text: `*(${size} *)${at} = r${src}` };
    if (mode === BPF_ATOMIC) {
      const width = bpfSize(code) === BPF_DW ? "64" : "";
      if (isAtomicAlu(imm)) {
        return { text: `lock *(${size} *)${at} ${ALU_STRING[imm >> 4]} r${src}` };
      }
      if ((imm & BPF_FETCH) && isAtomicAlu(imm & ~BPF_FETCH)) {
        const name = ATOMIC_ALU_STRING[imm & ~BPF_FETCH];
        return { text: `r${src} = atomic${width}_fetch_${name}((${size} *)${at}, r${src})` };
      }
      if (imm === BPF_CMPXCHG) {
        return { text: `r0 = atomic${width}_cmpxchg((${size} *)${at}, r0, r${src})` };
      }
      if (imm === BPF_XCHG) {
        return { text: `r${src} = atomic${width}_xchg((${size} *)${at}, r${src})` };
      }
      if (imm === BPF_LOAD_ACQ) {
        return { text: `r${dst} = load_acquire((${size} *)(r${src} ${signed(off)}))` };
      }
      if (imm === BPF_STORE_REL) {
        return { text: `store_release((${size} *)${at}, r${src})` };
      }
    }
    return { text: `BUG_${hex2(code)}`, bug: true };
  }

  if (cls === BPF_ST) {
    const mode = bpfMode(code);
    if (mode === BPF_MEM) return { text: `*(${size} *)(r${dst} ${signed(off)}) = ${imm}` };
    if (mode === BPF_NOSPEC) return { text: "nospec" };
    return { text: `BUG_st_${hex2(code)}`, bug: true };
  }

  if (cls === BPF_LDX) {
    const mode = bpfMode(code);
    if (mode !== BPF_MEM && mode !== BPF_MEMSX) return { text: `BUG_ldx_${hex2(code)}`, bug: true };
    const type = mode === BPF_MEM ? size : LDSX_STRING[bpfSize(code)] ?? "(null)";
    return { text: `r${dst} = *(${type} *)(r${src} ${signed(off)})` };
  }

  if (cls === BPF_LD) {
    const mode = bpfMode(code);
    if (mode === BPF_ABS) return { text: `r0 = *(${size} *)skb[${imm}]` };
    if (mode === BPF_IND) return { text: `r0 = *(${size} *)skb[r${src} + ${imm}]` };
    if (mode === BPF_IMM && bpfSize(code) === BPF_DW) {
      return { text: `r${dst} = ${wideImmediate(insn, opts)}` };
    }
    return { text: `BUG_ld_${hex2(code)}`, bug: true };
  }

  // BPF_JMP and BPF_JMP32.
  const op = bpfOp(code);
  const r = cls === BPF_JMP32 ? "w" : "r";
  if (op === BPF_CALL) {
    if (src === BPF_PSEUDO_CALL) return { text: `call pc${signed(imm)}` };
    return { text: `call ${callee(insn, opts)}#${imm}` };
  }
  if (code === (BPF_JMP | BPF_JA)) return { text: `goto pc${signed(off)}` };
  if (code === (BPF_JMP | BPF_JA | BPF_X)) return { text: `gotox r${dst}` };
  if (code === (BPF_JMP | BPF_JCOND) && src === BPF_MAY_GOTO) {
    return { text: `may_goto pc${signed(off)}` };
  }
  if (code === (BPF_JMP32 | BPF_JA)) return { text: `gotol pc${signed(imm)}` };
  if (code === (BPF_JMP | BPF_EXIT)) return { text: "exit" };
  const cmp = JMP_STRING[op >> 4] ?? "(null)";
  if (bpfSrc(code) === BPF_X) {
    return { text: `if ${r}${dst} ${cmp} ${r}${src} goto pc${signed(off)}` };
  }
  return { text: `if ${r}${dst} ${cmp} ${hex32(imm)} goto pc${signed(off)}` };
}

/** The right-hand side of an `lddw`, as bpftool's `print_imm()` writes it. */
function wideImmediate(insn: Insn, opts: DisasmOptions): string {
  const mapName = opts.mapName ?? mapByFd;
  const imm2 = insn.imm2 ?? 0;
  switch (insn.src) {
    case BPF_PSEUDO_MAP_FD:
      return mapName(insn.imm);
    case BPF_PSEUDO_MAP_VALUE:
      return `${mapName(insn.imm)}[0]+${imm2 >>> 0}`;
    case BPF_PSEUDO_MAP_IDX:
      return `map[idx:${insn.imm >>> 0}]`;
    case BPF_PSEUDO_MAP_IDX_VALUE:
      return `map[idx:${insn.imm >>> 0}]+${imm2 >>> 0}`;
    case BPF_PSEUDO_FUNC:
      return `subprog[${signed(insn.imm)}]`;
    default: {
      const full = (BigInt(imm2 >>> 0) << 32n) | BigInt(insn.imm >>> 0);
      return `0x${full.toString(16)}`;
    }
  }
}

/** The name printed before `#imm` in `call name#imm`. */
function callee(insn: Insn, opts: DisasmOptions): string {
  if (insn.src === 0) {
    const custom = opts.helperName?.(insn.imm);
    if (custom !== undefined) return custom;
    const proto = insn.imm >= 0 ? HELPERS[insn.imm] : undefined;
    return proto ? `bpf_${proto.name}` : "unknown";
  }
  if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
    return opts.kfuncName?.(insn.imm) ?? "kernel-function";
  }
  return "unknown";
}

/**
 * One instruction in kernel syntax, without the slot number:
 * `(bf) r6 = r1`, or `r6 = r1` with `opcodes: false`.
 */
export function disassembleOne(insn: Insn, opts: DisasmOptions = {}): string {
  const { text, bug } = body(insn, opts);
  if (bug || opts.opcodes === false) return text;
  return `(${hex2(insn.code)}) ${text}`;
}

/** The `% 4d: ` slot prefix bpftool prints before each instruction. */
export function slotLabel(slot: number): string {
  return ` ${slot}`.padStart(4) + ": ";
}

/**
 * A whole program, one line per instruction, numbered by slot as
 * `bpftool prog dump xlated` numbers it: `   6: (18) r7 = map[id:5]`.
 */
export function disassemble(insns: readonly Insn[], opts: DisasmOptions = {}): string[] {
  const lines: string[] = [];
  let slot = 0;
  for (const insn of insns) {
    lines.push(slotLabel(slot) + disassembleOne(insn, opts));
    slot += slotsOf(insn);
  }
  return lines;
}

/** The class name the kernel uses for an opcode (`ld`, `alu64`...), for messages. */
export function className(code: number): string {
  return CLASS_STRING[bpfClass(code)];
}
