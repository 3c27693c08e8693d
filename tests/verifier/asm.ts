/**
 * A small assembler for the verifier corpus, in the kernel's disassembly
 * syntax (what `bpftool prog dump xlated` prints), with labels:
 *
 * ```
 *   r1 = 0                      // mov64; "w1 = 0" is mov32
 *   *(u64 *)(r10 -8) = r1       // stx; "= 7" is st
 *   r2 = r10
 *   r2 += -8
 *   r1 = map[0] ll              // lddw of corpus map 0's fd
 *   call bpf_map_lookup_elem    // or "call 1"
 *   if r0 == 0 goto out         // or "goto +2" / "goto pc+2" (slots)
 *   r0 = *(u64 *)(r0 +0)
 * out:
 *   exit
 *   .raw 0x07 1 0 0 5           // any encoding: code dst src off imm [imm2]
 *   call @sub                   // bpf-to-bpf call of the function at label sub
 *   gotol out / may_goto out    // 32-bit offset jump / bounded-loop escape
 *   w1 = (s8)w2                 // movsx; r1 = (s32)r2 too
 *   r1 = atomic64_fetch_add((u64 *)(r2 +0), r1)   // also _and _or _xor, xchg
 *   r0 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r1) // 32-bit: atomic_..., w regs
 * ```
 *
 * Map references are returned as (logical index, corpus map number) so the
 * caller can patch in real fds.
 *
 * @module
 */

import * as B from "../../bytecode/build.ts";
import { helperByName } from "../../bytecode/helpers.ts";
import type { Insn } from "../../bytecode/insn.ts";
import * as op from "../../bytecode/opcodes.ts";

/** An assembled program. */
export interface Assembled {
  insns: Insn[];
  /** `lddw` map loads: logical instruction index and the corpus map number. */
  mapRefs: { index: number; map: number }[];
}

const ALU_OPS: Record<string, op.AluOp | op.SignedAluOp> = {
  "+=": "add",
  "-=": "sub",
  "*=": "mul",
  "/=": "div",
  "%=": "mod",
  "|=": "or",
  "&=": "and",
  "^=": "xor",
  "<<=": "lsh",
  ">>=": "rsh",
  "s>>=": "arsh",
  "s/=": "sdiv",
  "s%=": "smod",
};

const JMP_OPS: Record<string, op.JmpOp> = {
  "==": "jeq",
  "!=": "jne",
  ">": "jgt",
  ">=": "jge",
  "<": "jlt",
  "<=": "jle",
  "s>": "jsgt",
  "s>=": "jsge",
  "s<": "jslt",
  "s<=": "jsle",
  "&": "jset",
};

const SIZES: Record<string, op.SizeName> = { u8: "u8", u16: "u16", u32: "u32", u64: "u64" };

function num(s: string): number {
  const t = s.trim();
  const v = /^-?0x/i.test(t) ? Number(BigInt.asIntN(32, BigInt(t))) : Number(t);
  if (!Number.isFinite(v)) throw new Error(`not a number: ${s}`);
  return v;
}

function reg(s: string): number {
  const m = /^[rw](\d+)$/.exec(s.trim());
  if (!m) throw new Error(`not a register: ${s}`);
  return Number(m[1]);
}

function offset(sign: string, n: string): number {
  return (sign === "-" ? -1 : 1) * num(n);
}

/** Assembles the text; throws with the line number on a syntax error. */
export function assemble(text: string): Assembled {
  const insns: Insn[] = [];
  const mapRefs: { index: number; map: number }[] = [];
  const labels = new Map<string, number>(); // label -> slot
  const fixups: { index: number; label: string; line: number }[] = [];
  let slot = 0;
  const lines = text.split("\n");
  lines.forEach((raw, lineNo) => {
    const line = raw.replace(/\/\/.*$/, "").replace(/;.*$/, "").trim();
    if (!line) return;
    const label = /^([A-Za-z_][\w]*):$/.exec(line);
    if (label) {
      labels.set(label[1], slot);
      return;
    }
    try {
      const insn = parseLine(
        line,
        insns.length,
        mapRefs,
        (l) => fixups.push({ index: insns.length, label: l, line: lineNo + 1 }),
      );
      insns.push(insn);
      slot += insn.code === op.BPF_LDDW ? 2 : 1;
    } catch (e) {
      throw new Error(`line ${lineNo + 1}: ${(e as Error).message}: ${raw.trim()}`);
    }
  });
  // Resolve labels to slot offsets.
  const slotOf: number[] = [];
  let s = 0;
  for (const insn of insns) {
    slotOf.push(s);
    s += insn.code === op.BPF_LDDW ? 2 : 1;
  }
  for (const f of fixups) {
    const target = labels.get(f.label);
    if (target === undefined) throw new Error(`line ${f.line}: unknown label ${f.label}`);
    const rel = target - slotOf[f.index] - 1;
    const insn = insns[f.index];
    // bpf-to-bpf calls and gotol carry the offset in imm, other jumps in off.
    const inImm = insn.code === (op.BPF_JMP | op.BPF_CALL) ||
      insn.code === (op.BPF_JMP32 | op.BPF_JA);
    insns[f.index] = inImm ? { ...insn, imm: rel } : { ...insn, off: rel };
  }
  return { insns, mapRefs };
}

function target(t: string, fix: (label: string) => void): number {
  const m = /^(?:pc)?([+-]\d+)$/.exec(t.trim());
  if (m) return Number(m[1]);
  fix(t.trim());
  return 0;
}

function parseLine(
  line: string,
  index: number,
  mapRefs: { index: number; map: number }[],
  fix: (label: string) => void,
): Insn {
  let m: RegExpExecArray | null;
  if (line === "exit") return B.exit();
  if ((m = /^\.raw\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?$/.exec(line))) {
    const insn: Insn = {
      code: num(m[1]) & 0xff,
      dst: num(m[2]),
      src: num(m[3]),
      off: num(m[4]),
      imm: num(m[5]),
    };
    if (m[6] !== undefined) insn.imm2 = num(m[6]);
    return insn;
  }
  if ((m = /^call\s+(?:@(\w+)|pc([+-]\d+))$/.exec(line))) {
    if (m[2] !== undefined) return B.callLocal(Number(m[2]));
    fix(m[1]);
    return B.callLocal(0);
  }
  if ((m = /^gotol\s+(\S+)$/.exec(line))) return B.gotol(target(m[1], fix));
  if ((m = /^may_goto\s+(\S+)$/.exec(line))) return B.mayGoto(target(m[1], fix));
  // r1 = atomic64_fetch_add((u64 *)(r2 +0), r1)   r0 = atomic_cmpxchg((u32 *)(r2 +0), w0, w1)
  if (
    (m =
      /^([rw]\d+) = atomic(64)?_(fetch_add|fetch_and|fetch_or|fetch_xor|xchg|cmpxchg)\(\((u32|u64) \*\)\((r\d+) ([+-])\s*(\w+)\), (?:[rw]0, )?([rw]\d+)\)$/
        .exec(line))
  ) {
    const name = m[3].replace("fetch_", "") as "add" | "and" | "or" | "xor" | "xchg" | "cmpxchg";
    const fetch = m[3].startsWith("fetch_");
    return B.atomic(name, m[4] as "u32" | "u64", reg(m[5]), reg(m[8]), offset(m[6], m[7]), fetch);
  }
  if ((m = /^call\s+(\S+?)(?:#(\d+))?$/.exec(line))) {
    if (m[2]) return B.call(Number(m[2]));
    if (/^-?\d+$/.test(m[1])) {
      return { code: op.BPF_JMP | op.BPF_CALL, dst: 0, src: 0, off: 0, imm: Number(m[1]) };
    }
    const h = helperByName(m[1].replace(/^bpf_/, "")) ?? helperByName(m[1]);
    if (!h) throw new Error(`unknown helper ${m[1]}`);
    return B.call(h.id);
  }
  if ((m = /^goto\s+(\S+)$/.exec(line))) return B.ja(target(m[1], fix));
  if ((m = /^if\s+([rw]\d+)\s+(\S+)\s+(\S+)\s+goto\s+(\S+)$/.exec(line))) {
    const jop = JMP_OPS[m[2]];
    if (!jop) throw new Error(`unknown comparison ${m[2]}`);
    const w = m[1].startsWith("w");
    const off = target(m[4], fix);
    const d = reg(m[1]);
    if (/^[rw]\d+$/.test(m[3])) {
      return w ? B.jmp32Reg(jop, d, reg(m[3]), off) : B.jmpReg(jop, d, reg(m[3]), off);
    }
    return w ? B.jmp32Imm(jop, d, num(m[3]), off) : B.jmpImm(jop, d, num(m[3]), off);
  }
  // lock *(u64 *)(r1 +0) += r2
  if (
    (m = /^lock \*\((u32|u64) \*\)\((r\d+) ([+-])\s*(\w+)\) (\+=|\|=|&=|\^=) (r\d+)$/.exec(line))
  ) {
    const aop = ({ "+=": "add", "|=": "or", "&=": "and", "^=": "xor" } as const)[m[5] as "+="];
    return B.atomic(aop, m[1] as "u32" | "u64", reg(m[2]), reg(m[6]), offset(m[3], m[4]));
  }
  // *(u32 *)(r10 -8) = r1 | imm
  if ((m = /^\*\((u8|u16|u32|u64) \*\)\((r\d+) ([+-])\s*(\w+)\) = (\S+)$/.exec(line))) {
    const size = SIZES[m[1]];
    const off = offset(m[3], m[4]);
    if (/^r\d+$/.test(m[5])) return B.stx(size, reg(m[2]), reg(m[5]), off);
    return B.st(size, reg(m[2]), off, num(m[5]));
  }
  // r0 = *(u64 *)(r1 +8)   r0 = *(s32 *)(r1 +8)
  if ((m = /^(r\d+) = \*\(([us]\d+) \*\)\((r\d+) ([+-])\s*(\w+)\)$/.exec(line))) {
    const off = offset(m[4], m[5]);
    if (m[2].startsWith("s")) {
      return B.ldxSx(`u${m[2].slice(1)}` as "u8" | "u16" | "u32", reg(m[1]), reg(m[3]), off);
    }
    return B.ldx(SIZES[m[2]], reg(m[1]), reg(m[3]), off);
  }
  // r0 = *(u8 *)skb[12]   r0 = *(u16 *)skb[r7 + 2]   (legacy packet loads)
  if ((m = /^r0 = \*\((u8|u16|u32) \*\)skb\[(?:(r\d+) \+ )?(-?\w+)\]$/.exec(line))) {
    const size = m[1] as "u8" | "u16" | "u32";
    return m[2] ? B.ldInd(size, reg(m[2]), num(m[3])) : B.ldAbs(size, num(m[3]));
  }
  // r1 = map[0] ll / r1 = mapval[0]+8
  if ((m = /^(r\d+) = map\[(\d+)\](?: ll)?$/.exec(line))) {
    mapRefs.push({ index, map: Number(m[2]) });
    return B.ldMapFd(reg(m[1]), 0);
  }
  if ((m = /^(r\d+) = mapval\[(\d+)\]\+(\d+)(?: ll)?$/.exec(line))) {
    mapRefs.push({ index, map: Number(m[2]) });
    return B.ldMapValue(reg(m[1]), 0, Number(m[3]));
  }
  if ((m = /^(r\d+) = (-?(?:0x)?[0-9a-fA-F]+) ll$/.exec(line))) {
    return B.lddw(reg(m[1]), BigInt(m[2]));
  }
  // r1 = -r1
  if ((m = /^([rw]\d+) = -([rw]\d+)$/.exec(line))) {
    return m[1].startsWith("w") ? B.neg32(reg(m[1])) : B.neg64(reg(m[1]));
  }
  if ((m = /^(r\d+) = (be|le|bswap)(16|32|64) (r\d+)$/.exec(line))) {
    const bits = Number(m[3]) as 16 | 32 | 64;
    return m[2] === "be"
      ? B.toBe(reg(m[1]), bits)
      : m[2] === "le"
      ? B.toLe(reg(m[1]), bits)
      : B.bswap(reg(m[1]), bits);
  }
  if ((m = /^(r\d+) = \((s8|s16|s32)\)(r\d+)$/.exec(line))) {
    return B.movSx64(reg(m[1]), reg(m[3]), Number(m[2].slice(1)) as 8 | 16 | 32);
  }
  if ((m = /^(w\d+) = \((s8|s16)\)(w\d+)$/.exec(line))) {
    return B.movSx32(reg(m[1]), reg(m[3]), Number(m[2].slice(1)) as 8 | 16);
  }
  if ((m = /^([rw]\d+) = ([rw]\d+)$/.exec(line))) {
    return m[1].startsWith("w")
      ? B.mov32Reg(reg(m[1]), reg(m[2]))
      : B.mov64Reg(reg(m[1]), reg(m[2]));
  }
  if ((m = /^([rw]\d+) = (\S+)$/.exec(line))) {
    return m[1].startsWith("w")
      ? B.mov32Imm(reg(m[1]), num(m[2]))
      : B.mov64Imm(reg(m[1]), num(m[2]));
  }
  if ((m = /^([rw]\d+) (\S+=) (\S+)$/.exec(line))) {
    const aop = ALU_OPS[m[2]];
    if (!aop) throw new Error(`unknown operator ${m[2]}`);
    const w = m[1].startsWith("w");
    if (/^[rw]\d+$/.test(m[3])) {
      return w ? B.alu32Reg(aop, reg(m[1]), reg(m[3])) : B.alu64Reg(aop, reg(m[1]), reg(m[3]));
    }
    return w ? B.alu32Imm(aop, reg(m[1]), num(m[3])) : B.alu64Imm(aop, reg(m[1]), num(m[3]));
  }
  throw new Error("cannot parse");
}
