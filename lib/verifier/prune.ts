/**
 * The states kept at prune points (the kernel's explored states), and the
 * read marks that let a complete state cover others: like the kernel, each
 * kept state records which registers and stack slots the paths explored
 * from it read before overwriting; once all its paths are explored, only
 * those need to match for another state to be pruned.
 *
 * Finding a covering state is most of the exploration's work on programs
 * with many paths, so complete states are indexed by a hash of the known
 * numbers in the registers they read: a state that covers another must
 * hold the same numbers there, so only states with an equal hash are
 * compared in full. The result is the same as trying every state in order.
 *
 * @module
 */

import { fail } from "./errors.ts";
import { type MachineState, subsumes } from "./state.ts";

/** A state kept at a prune point. */
export interface Checkpoint {
  readonly state: MachineState;
  /** Paths still being explored from here; 0 once complete. */
  branches: number;
  readonly parent: Checkpoint | null;
  /** Where it is kept, and its position there (older first). */
  readonly home: PruneStates;
  readonly seq: number;
  readRegs: number;
  /** Stack slots 0-31 and 32-63 read, as bit sets. */
  readLo: number;
  readHi: number;
  /** What the path wrote between the parent checkpoint and this one. */
  readonly wroteRegs: number;
  readonly wroteLo: number;
  readonly wroteHi: number;
  /** Known-number registers another state must match exactly (in progress), -1 until known. */
  exactMask: number;
  exactHash: number;
  /** The same once complete, among the registers it read. */
  doneMask: number;
  doneHash: number;
}

/** What a path carries for the read marks: its last checkpoint and what it wrote since. */
export interface PathMarks {
  parent: Checkpoint | null;
  wroteRegs: number;
  wroteLo: number;
  wroteHi: number;
}

/** Explored states kept per instruction (older ones still prune; new ones are not added). */
const MAX_STATES_PER_INSN = 32;

/**
 * The registers among `regs` that hold a known number in `st` (a state
 * that covers another must have the same numbers there).
 */
function constMask(st: MachineState, regs: number): number {
  let mask = 0;
  for (let r = 0; r < 10; r++) {
    if ((regs & (1 << r)) === 0) continue;
    const v = st.regs[r];
    if (v.kind === "scalar" && v.val.mHi === 0 && v.val.mLo === 0) mask |= 1 << r;
  }
  return mask;
}

/** Hash of the known numbers in registers `mask`; NaN when one of them is not a known number. */
function constHash(st: MachineState, mask: number): number {
  let h = 0x811c9dc5;
  for (let m = mask; m !== 0; m &= m - 1) {
    const v = st.regs[31 - Math.clz32(m & -m)];
    if (v.kind !== "scalar" || v.val.mHi !== 0 || v.val.mLo !== 0) return NaN;
    h = Math.imul(h ^ v.val.vLo, 0x01000193) ^ v.val.vHi;
  }
  return h;
}

/** The states kept at one instruction. */
export class PruneStates {
  /** All of them, oldest first. */
  readonly all: Checkpoint[] = [];
  /** Complete ones by doneHash. */
  readonly #done = new Map<number, Checkpoint[]>();
  /** The distinct doneMasks among the complete ones. */
  readonly #masks: number[] = [];

  constructor(
    readonly pc: number,
    /** Registers live at pc. */
    readonly live: number,
    /** Whether pc is on a cycle (only there can a state repeat while in progress). */
    readonly onCycle: boolean,
    /**
     * Whether pc is a may_goto: a loop through it ends when its run-time
     * budget does, so a repeated state is explored already, not an infinite loop.
     */
    readonly mayGoto = false,
  ) {}

  /**
   * The oldest complete state that covers `st`, if any. Throws back-edge
   * when, before it, a state still in progress equals `st` exactly (the
   * program came back to the same state: an infinite loop).
   */
  covering(st: MachineState): Checkpoint | undefined {
    let found: Checkpoint | undefined;
    for (let k = 0; k < this.#masks.length; k++) {
      const mask = this.#masks[k];
      const bucket = this.#done.get(constHash(st, mask));
      if (bucket === undefined) continue;
      for (let i = 0; i < bucket.length; i++) {
        const cp = bucket[i];
        if (cp.doneMask !== mask || (found !== undefined && cp.seq > found.seq)) continue;
        if (subsumes(cp.state, st, cp.readRegs & this.live, false, cp.readLo, cp.readHi)) {
          found = cp;
        }
      }
    }
    if (this.onCycle) {
      const again = this.#checkRepeat(st, found === undefined ? this.all.length : found.seq);
      // Its reads are not all known yet: count everything as read.
      if (again) return { ...again, readRegs: 0xffff, readLo: -1, readHi: -1 };
    }
    return found;
  }

  /**
   * Fails when a state in progress among the first `before` equals `st`
   * exactly; at a may_goto, returns that state instead.
   */
  #checkRepeat(st: MachineState, before: number): Checkpoint | undefined {
    let hashMask = -1, curHash = 0;
    for (let i = 0; i < before; i++) {
      const cp = this.all[i];
      if (cp.branches === 0) continue;
      if (cp.exactMask < 0) {
        cp.exactMask = constMask(cp.state, this.live);
        cp.exactHash = constHash(cp.state, cp.exactMask);
      }
      if (cp.exactMask !== hashMask) curHash = constHash(st, hashMask = cp.exactMask);
      if (cp.exactHash !== curHash) continue;
      if (subsumes(cp.state, st, this.live, true)) {
        if (this.mayGoto) return cp;
        fail(
          "back-edge",
          this.pc,
          "infinite loop: the program returns here in exactly the same state",
        );
      }
    }
    return undefined;
  }

  /** Keeps a copy of the path's state (unless full); returns the new checkpoint. */
  keep(path: PathMarks & { st: MachineState }): Checkpoint | undefined {
    if (this.all.length >= MAX_STATES_PER_INSN) return undefined;
    const cp: Checkpoint = {
      state: path.st.clone(),
      branches: 1,
      parent: path.parent,
      home: this,
      seq: this.all.length,
      readRegs: 0,
      readLo: 0,
      readHi: 0,
      wroteRegs: path.wroteRegs,
      wroteLo: path.wroteLo,
      wroteHi: path.wroteHi,
      exactMask: -1,
      exactHash: 0,
      doneMask: -1,
      doneHash: 0,
    };
    this.all.push(cp);
    return cp;
  }

  /** A checkpoint here became complete: its read marks are final, index it. */
  completed(cp: Checkpoint): void {
    const mask = constMask(cp.state, cp.readRegs & this.live);
    cp.doneMask = mask;
    cp.doneHash = constHash(cp.state, mask);
    const bucket = this.#done.get(cp.doneHash);
    if (bucket === undefined) this.#done.set(cp.doneHash, [cp]);
    else bucket.push(cp);
    if (!this.#masks.includes(mask)) this.#masks.push(mask);
  }
}

/** A path ended: checkpoints whose paths are all explored become complete. */
export function finish(cp: Checkpoint | null): void {
  for (let c = cp; c !== null; c = c.parent) {
    if (--c.branches > 0) break;
    c.home.completed(c);
  }
}

/**
 * Marks registers (bit set) as read by the path: on every checkpoint up the
 * chain until one already has the mark, or the path wrote the register
 * after it. One walk for all the registers.
 */
export function markRegsRead(path: PathMarks, regs: number): void {
  let need = regs & ~path.wroteRegs;
  for (let cp = path.parent; cp !== null && need !== 0; cp = cp.parent) {
    need &= ~cp.readRegs; // marked here means marked further up too
    cp.readRegs |= need;
    need &= ~cp.wroteRegs;
  }
}

/** Marks stack slots (bit sets for slots 0-31 and 32-63) as read, like markRegsRead. */
export function markSlotsRead(path: PathMarks, lo: number, hi: number): void {
  let needLo = lo & ~path.wroteLo, needHi = hi & ~path.wroteHi;
  for (let cp = path.parent; cp !== null && (needLo | needHi) !== 0; cp = cp.parent) {
    needLo &= ~cp.readLo;
    needHi &= ~cp.readHi;
    cp.readLo |= needLo;
    cp.readHi |= needHi;
    needLo &= ~cp.wroteLo;
    needHi &= ~cp.wroteHi;
  }
}
