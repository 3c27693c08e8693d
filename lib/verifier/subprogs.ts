/**
 * Subprograms (bpf-to-bpf calls), as the kernel's `check_subprogs` and
 * `check_max_stack_depth` see them: every call target starts a subprogram
 * that runs to the next one; jumps stay inside their subprogram, each
 * subprogram ends in `exit` or `goto`; no call is recursive, a chain of calls
 * is at most 8 frames deep and its stack frames together fit in 512 bytes.
 *
 * @module
 */

import * as op from "../../bytecode/opcodes.ts";
import { jumpTarget, type ProgramView } from "./program.ts";

/** Deepest chain of frames the kernel runs (MAX_CALL_FRAMES). */
export const MAX_CALL_FRAMES = 8;
/** Combined stack of a call chain (MAX_BPF_STACK). */
const MAX_STACK = 512;

/** The subprograms of a program. */
export interface Subprogs {
  /** First instruction of each subprogram (0 is the main program). */
  readonly starts: readonly number[];
  /** Subprogram of each instruction. */
  readonly subOf: Int32Array;
  /** Subprograms each one calls (directly). */
  readonly callees: readonly (readonly number[])[];
}

/** Is instruction `code/src` a bpf-to-bpf call? */
export function isLocalCall(code: number, src: number): boolean {
  return code === (op.BPF_JMP | op.BPF_CALL) && src === op.BPF_PSEUDO_CALL;
}

/**
 * Finds the subprograms; returns the first problem (at a logical
 * instruction) as the kernel reports it, or the subprograms.
 */
export function findSubprogs(
  p: ProgramView,
): { subs: Subprogs } | { at: number; code: "jump-out-of-range" | "no-exit"; message: string } {
  const insns = p.insns, n = insns.length;
  const starts = new Set<number>([0]);
  for (let i = 0; i < n; i++) {
    if (!isLocalCall(insns[i].code, insns[i].src)) continue;
    const t = jumpTarget(p, i, insns[i].imm);
    if (t < 0) {
      return {
        at: i,
        code: "jump-out-of-range",
        message: "the call target is outside the program",
      };
    }
    starts.add(t);
  }
  const sorted = [...starts].sort((a, b) => a - b);
  const subOf = new Int32Array(n);
  for (let s = 0; s < sorted.length; s++) {
    const end = s + 1 < sorted.length ? sorted[s + 1] : n;
    subOf.fill(s, sorted[s], end);
    const last = insns[end - 1].code;
    if (last !== (op.BPF_JMP | op.BPF_EXIT) && (last & 0xf7) !== (op.BPF_JMP | op.BPF_JA)) {
      return {
        at: end - 1,
        code: "no-exit",
        message:
          `the last instruction of subprogram ${s} is not exit or goto: it runs into the next`,
      };
    }
  }
  const callees: number[][] = sorted.map(() => []);
  for (let i = 0; i < n; i++) {
    const { code, src } = insns[i];
    const cls = code & 0x07, o = code & 0xf0;
    if (cls !== op.BPF_JMP && cls !== op.BPF_JMP32) continue;
    if (o === op.BPF_EXIT) continue;
    if (o === op.BPF_CALL) {
      if (src === op.BPF_PSEUDO_CALL) {
        const callee = subOf[jumpTarget(p, i, insns[i].imm)];
        if (!callees[subOf[i]].includes(callee)) callees[subOf[i]].push(callee);
      }
      continue;
    }
    const off = cls === op.BPF_JMP32 && o === op.BPF_JA ? insns[i].imm : insns[i].off;
    const t = jumpTarget(p, i, off);
    if (t >= 0 && subOf[t] !== subOf[i]) {
      return {
        at: i,
        code: "jump-out-of-range",
        message: `the jump leaves subprogram ${subOf[i]} for subprogram ${subOf[t]}`,
      };
    }
  }
  return { subs: { starts: sorted, subOf, callees } };
}

/**
 * What is wrong with the call graph, given each subprogram's stack depth:
 * recursion, chains deeper than 8 frames, or chains whose frames (each
 * rounded up to 32 bytes, as the interpreter does) exceed 512 bytes.
 */
export function callChainProblem(subs: Subprogs, depths: Int32Array): string | undefined {
  const frameSize = (s: number) => Math.ceil(Math.max(depths[s], 1) / 32) * 32;
  const chain: number[] = [];
  const walk = (s: number, total: number): string | undefined => {
    if (chain.includes(s)) return `subprogram ${s} calls itself (recursion is not allowed)`;
    chain.push(s);
    total += frameSize(s);
    if (chain.length > MAX_CALL_FRAMES) {
      return `a chain of ${chain.length} calls is deeper than ${MAX_CALL_FRAMES} frames`;
    }
    if (total > MAX_STACK) {
      return `the stack frames of a chain of ${chain.length} calls take ${total} bytes, more than ${MAX_STACK}`;
    }
    for (const c of subs.callees[s]) {
      const why = walk(c, total);
      if (why) return why;
    }
    chain.pop();
    return undefined;
  };
  return walk(0, 0);
}
