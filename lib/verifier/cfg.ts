/**
 * The control-flow graph: successors of every instruction, jumps that leave
 * the program or land inside an `lddw`, paths that run off the end, and
 * instructions no path reaches. Loops are allowed here; whether they are
 * bounded is decided by the path exploration (as in the privileged kernel).
 *
 * Every instruction has at most two successors (the next one, and a jump
 * target), kept in typed arrays: this runs once per program at tool start,
 * while V8 is cold, so it avoids an array per instruction.
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

/** Successors and the jump targets (where explored states are kept). */
export interface Cfg {
  /** The instruction each one falls through to, or -1 (exit, goto, the last one). */
  readonly next: Int32Array;
  /** The instruction each one may jump (or call) to, or -1. */
  readonly jump: Int32Array;
  /** Instructions reached by a jump or following a conditional jump: prune points. */
  readonly prunePoint: Uint8Array;
  /** Some jump goes backwards: only then can the graph have a cycle. */
  readonly backJump: boolean;
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
  const insns = p.insns;
  const n = insns.length;
  const next = new Int32Array(n).fill(-1);
  const jump = new Int32Array(n).fill(-1);
  const prunePoint = new Uint8Array(n);
  const problems: CfgProblem[] = [];
  let backJump = false;
  for (let i = 0; i < n; i++) {
    const code = insns[i].code;
    const cls = code & 0x07;
    if (cls !== op.BPF_JMP && cls !== op.BPF_JMP32) {
      if (i + 1 < n) next[i] = i + 1;
      continue;
    }
    const o = code & 0xf0;
    if (o === op.BPF_EXIT) continue;
    let off: number;
    if (o === op.BPF_CALL) {
      if (i + 1 < n) next[i] = i + 1;
      if (insns[i].src !== op.BPF_PSEUDO_CALL) continue;
      off = insns[i].imm;
    } else if (o === op.BPF_JA) {
      off = cls === op.BPF_JMP32 ? insns[i].imm : insns[i].off;
    } else {
      // Conditional (and may_goto): both ways; the next instruction is a prune point too.
      if (i + 1 < n) {
        next[i] = i + 1;
        prunePoint[i + 1] = 1;
      }
      off = insns[i].off;
    }
    const t = jumpTarget(p, i, off);
    if (t < 0) {
      problems.push(jumpProblem(p, i, off, t));
      continue;
    }
    jump[i] = t;
    if (t <= i) backJump = true;
    if (o !== op.BPF_CALL) prunePoint[t] = 1;
  }
  if (n === 0) {
    problems.push({ code: "no-exit", at: 0, message: "the program is empty" });
    return { cfg: { next, jump, prunePoint, backJump }, problems };
  }
  const lastCode = insns[n - 1].code;
  const lastCls = lastCode & 0x07, lastOp = lastCode & 0xf0;
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
  const work = new Int32Array(n);
  let top = 0;
  work[top++] = 0;
  seen[0] = 1;
  while (top > 0) {
    const i = work[--top];
    const a = next[i], b = jump[i];
    if (a >= 0 && seen[a] === 0) {
      seen[a] = 1;
      work[top++] = a;
    }
    if (b >= 0 && seen[b] === 0) {
      seen[b] = 1;
      work[top++] = b;
    }
  }
  if (seen.indexOf(0) >= 0) unreachable(p, seen, problems);
  // Every reachable instruction must be able to reach an exit.
  if (!problems.length) {
    const canExit = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (next[i] < 0 && jump[i] < 0 && isExit(insns[i].code)) canExit[i] = 1;
    }
    for (let changed = true; changed;) {
      changed = false;
      for (let i = n - 1; i >= 0; i--) {
        if (canExit[i] === 1) continue;
        const a = next[i], b = jump[i];
        if ((a >= 0 && canExit[a] === 1) || (b >= 0 && canExit[b] === 1)) {
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
  return { cfg: { next, jump, prunePoint, backJump }, problems };
}

/** The problem with a jump from i by `off` slots that does not land on an instruction. */
function jumpProblem(p: ProgramView, i: number, off: number, t: number): CfgProblem {
  const slot = p.slotOf[i];
  const dest = slot + 1 + off;
  return {
    code: "jump-out-of-range",
    at: i,
    message: t === -2
      ? `jump into the middle of the lddw at slot ${dest - 1}`
      : `jump out of range: from slot ${slot} to slot ${dest} (program has ${p.slots} slots)`,
  };
}

/** Reports each run of instructions no path reaches. */
function unreachable(p: ProgramView, seen: Uint8Array, problems: CfgProblem[]): void {
  const n = seen.length;
  for (let i = 0; i < n; i++) {
    if (seen[i]) continue;
    let j = i;
    while (j + 1 < n && !seen[j + 1]) j++;
    problems.push({
      code: "unreachable-insn",
      at: i,
      message: j === i
        ? `unreachable instruction (slot ${p.slotOf[i]})`
        : `unreachable instructions (slots ${p.slotOf[i]}-${p.slotOf[j]})`,
    });
    i = j;
  }
}

function isExit(code: number): boolean {
  return (code & 0x07) === op.BPF_JMP && (code & 0xf0) === op.BPF_EXIT;
}

/**
 * Instructions on a cycle of the graph (Tarjan's strongly connected
 * components). Only there can a path come back to a state it is still
 * exploring, so only there is the infinite-loop check needed. Without a
 * backward jump there is no cycle.
 */
export function onCycle(cfg: Cfg): Uint8Array {
  const n = cfg.next.length;
  const result = new Uint8Array(n);
  if (!cfg.backJump) return result;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack = new Int32Array(n);
  let sp = 0;
  // Iterative DFS: a frame is a node and how many of its successors were visited (0-2).
  const frameNode = new Int32Array(n), frameEdge = new Int8Array(n);
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] >= 0) continue;
    let fp = 0;
    frameNode[fp] = root;
    frameEdge[fp++] = 0;
    index[root] = low[root] = counter++;
    stack[sp++] = root;
    onStack[root] = 1;
    while (fp > 0) {
      const v = frameNode[fp - 1];
      const e = frameEdge[fp - 1];
      if (e < 2) {
        frameEdge[fp - 1] = e + 1;
        const w = e === 0 ? cfg.next[v] : cfg.jump[v];
        if (w < 0) continue;
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack[sp++] = w;
          onStack[w] = 1;
          frameNode[fp] = w;
          frameEdge[fp++] = 0;
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], index[w]);
        }
        continue;
      }
      fp--;
      if (fp > 0) {
        const u = frameNode[fp - 1];
        low[u] = Math.min(low[u], low[v]);
      }
      if (low[v] === index[v]) {
        // v roots a component: it is a cycle when it has several members or a self loop.
        const first = sp;
        let w: number;
        do {
          w = stack[--sp];
          onStack[w] = 0;
        } while (w !== v);
        const cyclic = first - sp > 1 || cfg.next[v] === v || cfg.jump[v] === v;
        if (cyclic) { for (let k = sp; k < first; k++) result[stack[k]] = 1; }
      }
    }
  }
  return result;
}
