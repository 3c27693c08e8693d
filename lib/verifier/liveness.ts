/**
 * Static register liveness: which of R0-R9 may still be read (before being
 * overwritten) from each instruction on. Explored states are compared only
 * on live registers, so paths that differ in dead values are pruned.
 *
 * @module
 */

import * as op from "../../bytecode/opcodes.ts";
import type { HelperProto } from "../../bytecode/helpers.ts";
import type { Cfg } from "./cfg.ts";
import type { ProgramView } from "./program.ts";

const ARGS = 0b111110; // R1-R5
const CLOBBER = 0b111111; // R0-R5

function bit(r: number): number {
  return r < 10 ? 1 << r : 0;
}

/**
 * Registers instruction i reads and writes, as bit masks: `use | (def << 16)`
 * (one number, so nothing is allocated per instruction).
 */
function useDef(p: ProgramView, i: number, helpers: ReadonlyMap<number, HelperProto>): number {
  const { code, dst, src, imm } = p.insns[i];
  const x = (code & 0x08) !== 0; // BPF_X
  switch (code & 0x07) {
    case op.BPF_ALU:
    case op.BPF_ALU64: {
      if ((code & 0xf0) === op.BPF_MOV) return (x ? bit(src) : 0) | (bit(dst) << 16);
      return bit(dst) | (x ? bit(src) : 0) | (bit(dst) << 16);
    }
    case op.BPF_LDX:
      return bit(src) | (bit(dst) << 16);
    case op.BPF_ST:
      return bit(dst);
    case op.BPF_STX: {
      if ((code & 0xe0) !== op.BPF_ATOMIC) return bit(dst) | bit(src);
      if (imm === op.BPF_LOAD_ACQ) return bit(src) | (bit(dst) << 16);
      if (imm === op.BPF_CMPXCHG) return bit(dst) | bit(src) | 1 | (1 << 16);
      return bit(dst) | bit(src) | ((imm & op.BPF_FETCH ? bit(src) : 0) << 16);
    }
    case op.BPF_LD:
      if (code === op.BPF_LDDW) return bit(dst) << 16;
      return bit(6) | ((code & 0xe0) === op.BPF_IND ? bit(src) : 0) | (CLOBBER << 16);
    case op.BPF_JMP:
    case op.BPF_JMP32: {
      const o = code & 0xf0;
      if (o === op.BPF_JA || o === op.BPF_JCOND) return 0;
      if (o === op.BPF_EXIT) return 1;
      if (o === op.BPF_CALL) {
        const h = src === 0 ? helpers.get(imm) : undefined;
        const uses = h ? ((1 << (h.args.length + 1)) - 2) & ARGS : ARGS;
        return uses | (CLOBBER << 16);
      }
      return bit(dst) | (x ? bit(src) : 0);
    }
  }
  return 0;
}

/** Registers each instruction reads (`uses`) and writes (`defs`), as bit masks. */
export function registerUse(
  p: ProgramView,
  helpers: ReadonlyMap<number, HelperProto>,
): { uses: Uint16Array; defs: Uint16Array } {
  const n = p.insns.length;
  const uses = new Uint16Array(n), defs = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const ud = useDef(p, i, helpers);
    uses[i] = ud & 0xffff;
    defs[i] = ud >>> 16;
  }
  return { uses, defs };
}

/** Live-in register masks per logical instruction. */
export function liveRegisters(cfg: Cfg, use: Uint16Array, def: Uint16Array): Uint16Array {
  const n = use.length;
  const live = new Uint16Array(n);
  const next = cfg.next, jump = cfg.jump;
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = n - 1; i >= 0; i--) {
      const a = next[i], b = jump[i];
      const out = (a >= 0 ? live[a] : 0) | (b >= 0 ? live[b] : 0);
      const v = use[i] | (out & ~def[i]);
      if (v !== live[i]) {
        live[i] = v;
        changed = true;
      }
    }
  }
  return live;
}
