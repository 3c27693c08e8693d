/**
 * A program as the verifier walks it: logical instructions (an `lddw` is one)
 * plus the slot numbering the kernel uses for jumps and diagnostics.
 *
 * @module
 */

import { decode } from "../../bytecode/encode.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { BPF_LDDW } from "../../bytecode/opcodes.ts";
import type { ProgramInput } from "./types.ts";

/** Logical instructions with slot bookkeeping. */
export interface ProgramView {
  readonly insns: readonly Insn[];
  /** Slot at which logical instruction i starts. */
  readonly slotOf: Int32Array;
  /** Logical instruction starting at each slot; -1 for the second half of an `lddw`. */
  readonly atSlot: Int32Array;
  /** Total slots. */
  readonly slots: number;
}

/** Builds the view; bytes are decoded first (a decoding error is thrown as is). */
export function programView(input: ProgramInput): ProgramView {
  const insns = input instanceof Uint8Array ? decode(input) : input;
  const slotOf = new Int32Array(insns.length);
  let slots = 0;
  for (let i = 0; i < insns.length; i++) {
    slotOf[i] = slots;
    slots += insns[i].code === BPF_LDDW ? 2 : 1;
  }
  const atSlot = new Int32Array(slots).fill(-1);
  for (let i = 0; i < insns.length; i++) atSlot[slotOf[i]] = i;
  return { insns, slotOf, atSlot, slots };
}

/**
 * Where a jump at logical instruction i with slot offset `off` lands: a
 * logical index, or a negative number when it leaves the program (-1) or
 * lands inside an `lddw` (-2).
 */
export function jumpTarget(p: ProgramView, i: number, off: number): number {
  const slot = p.slotOf[i] + 1 + off;
  if (slot < 0 || slot >= p.slots) return -1;
  const t = p.atSlot[slot];
  return t < 0 ? -2 : t;
}
