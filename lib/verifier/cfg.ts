/**
 * The control-flow graph: successors of every instruction, jumps that leave
 * the program or land inside an `lddw`, paths that run off the end, and
 * instructions no path reaches. Loops are allowed here; whether they are
 * bounded is decided by the path exploration (as in the privileged kernel).
 *
 * @module
 */

import * as op from "../../bytecode/opcodes.ts";
import { jumpTarget, type ProgramView } from "./program.ts";

/** A CFG problem, at a logical instruction. */
export interface CfgProblem {
  code: "jump-out-of-range" | "no-exit" | "unreachable-insn" | "back-edge";
  at: number;
  message: string;
}

/** Successor lists and the jump targets (where explored states are kept). */
export interface Cfg {
  /** Successors of each logical instruction (empty for exit). */
  readonly succ: readonly number[][];
  /** Instructions reached by a jump or following a conditional jump: prune points. */
  readonly prunePoint: Uint8Array;
}

/** Is this a conditional jump (not ja, call, exit, may_goto)? */
export function isCondJump(code: number): boolean {
  const cls = op.bpfClass(code);
  if (cls !== op.BPF_JMP && cls !== op.BPF_JMP32) return false;
  const o = op.bpfOp(code);
  return o !== op.BPF_JA && o !== op.BPF_CALL && o !== op.BPF_EXIT && o !== op.BPF_JCOND;
}

/** Builds the CFG and reports its problems (all of them, not just the first). */
export function buildCfg(p: ProgramView): { cfg: Cfg; problems: CfgProblem[] } {
  const n = p.insns.length;
  const succ: number[][] = [];
  const prunePoint = new Uint8Array(n);
  const problems: CfgProblem[] = [];
  const slot = (i: number) => p.slotOf[i];
  const to = (i: number, off: number): number | undefined => {
    const t = jumpTarget(p, i, off);
    if (t >= 0) return t;
    const dest = slot(i) + 1 + off;
    problems.push({
      code: "jump-out-of-range",
      at: i,
      message: t === -2
        ? `jump into the middle of the lddw at slot ${dest - 1}`
        : `jump out of range: from slot ${slot(i)} to slot ${dest} (program has ${p.slots} slots)`,
    });
    return undefined;
  };
  for (let i = 0; i < n; i++) {
    const { code, off, imm, src } = p.insns[i];
    const cls = op.bpfClass(code);
    const o = op.bpfOp(code);
    const next = i + 1 < n ? [i + 1] : [];
    if (cls === op.BPF_JMP || cls === op.BPF_JMP32) {
      if (o === op.BPF_EXIT) {
        succ.push([]);
        continue;
      }
      if (o === op.BPF_CALL) {
        const s = [...next];
        if (src === op.BPF_PSEUDO_CALL) {
          const t = to(i, imm);
          if (t !== undefined) s.push(t);
        }
        succ.push(s);
        continue;
      }
      if (o === op.BPF_JA) {
        const t = to(i, cls === op.BPF_JMP32 ? imm : off);
        if (t !== undefined) prunePoint[t] = 1;
        succ.push(t === undefined ? [] : [t]);
        continue;
      }
      const t = to(i, off);
      const s = [...next];
      if (t !== undefined) {
        prunePoint[t] = 1;
        s.push(t);
      }
      if (i + 1 < n) prunePoint[i + 1] = 1;
      succ.push(s);
      continue;
    }
    succ.push(next);
  }
  if (n === 0) {
    problems.push({ code: "no-exit", at: 0, message: "the program is empty" });
    return { cfg: { succ, prunePoint }, problems };
  }
  const last = p.insns[n - 1];
  const lastCls = op.bpfClass(last.code);
  const lastOp = op.bpfOp(last.code);
  const endsOk = (lastCls === op.BPF_JMP && (lastOp === op.BPF_EXIT || lastOp === op.BPF_JA)) ||
    (lastCls === op.BPF_JMP32 && lastOp === op.BPF_JA);
  if (!endsOk) {
    problems.push({
      code: "no-exit",
      at: n - 1,
      message: "the last instruction is not exit or goto: the program can run off its end",
    });
  }
  // Reachability from the first instruction.
  const seen = new Uint8Array(n);
  const work = [0];
  seen[0] = 1;
  while (work.length) {
    const i = work.pop()!;
    for (const s of succ[i]) {
      if (!seen[s]) {
        seen[s] = 1;
        work.push(s);
      }
    }
  }
  for (let i = 0; i < n; i++) {
    if (seen[i]) continue;
    let j = i;
    while (j + 1 < n && !seen[j + 1]) j++;
    problems.push({
      code: "unreachable-insn",
      at: i,
      message: j === i
        ? `unreachable instruction (slot ${slot(i)})`
        : `unreachable instructions (slots ${slot(i)}-${slot(j)})`,
    });
    i = j;
  }
  // Every reachable instruction must be able to reach an exit.
  if (!problems.length) {
    const canExit = new Uint8Array(n);
    let changed = true;
    for (let i = 0; i < n; i++) if (succ[i].length === 0 && isExit(p, i)) canExit[i] = 1;
    while (changed) {
      changed = false;
      for (let i = n - 1; i >= 0; i--) {
        if (!canExit[i] && succ[i].some((s) => canExit[s])) {
          canExit[i] = 1;
          changed = true;
        }
      }
    }
    for (let i = 0; i < n; i++) {
      if (seen[i] && !canExit[i]) {
        problems.push({
          code: "back-edge",
          at: i,
          message: "no path from here reaches exit: infinite loop",
        });
        break;
      }
    }
  }
  return { cfg: { succ, prunePoint }, problems };
}

function isExit(p: ProgramView, i: number): boolean {
  const c = p.insns[i].code;
  return op.bpfClass(c) === op.BPF_JMP && op.bpfOp(c) === op.BPF_EXIT;
}

/**
 * Instructions on a cycle of the graph (Tarjan's strongly connected
 * components). Only there can a path come back to a state it is still
 * exploring, so only there is the infinite-loop check needed.
 */
export function onCycle(succ: readonly number[][]): Uint8Array {
  const n = succ.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const result = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] >= 0) continue;
    // Iterative DFS: frames of (node, next successor position).
    const frames: [number, number][] = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (frames.length) {
      const frame = frames[frames.length - 1];
      const [v, i] = frame;
      if (i < succ[v].length) {
        frame[1]++;
        const w = succ[v][i];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          frames.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], index[w]);
        }
        continue;
      }
      frames.pop();
      if (frames.length) {
        const u = frames[frames.length - 1][0];
        low[u] = Math.min(low[u], low[v]);
      }
      if (low[v] === index[v]) {
        const members: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          members.push(w);
        } while (w !== v);
        const cyclic = members.length > 1 || succ[v].includes(v);
        if (cyclic) { for (const m of members) result[m] = 1; }
      }
    }
  }
  return result;
}
