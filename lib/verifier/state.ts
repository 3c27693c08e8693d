/**
 * The abstract machine state on one path: eleven registers, the 512-byte
 * stack (per byte: never written, holds a number, holds zero, or part of a
 * saved register), and the ring buffer reservations not yet released.
 *
 * Register values are immutable objects, so copying a state for a branch is
 * cheap: the arrays are copied, the values shared.
 *
 * @module
 */

import type { MapInfo } from "./types.ts";
import {
  isConst,
  known,
  type Scalar,
  scalarContains,
  scalarEquals,
  scalarToString,
  sharedConstIndex,
  unknown,
} from "./scalar.ts";

/** What a register holds. */
export type RegKind =
  | "uninit"
  | "scalar"
  /** The program's context (R1 on entry). */
  | "ctx"
  /** A pointer into the stack frame (R10 and copies). */
  | "stack"
  /** A map, as loaded by `lddw` with a map fd: only for passing to helpers. */
  | "map_ptr"
  /** A pointer into a map value. */
  | "map_value"
  /** A pointer into a ring buffer record (from bpf_ringbuf_reserve). */
  | "ringbuf_mem"
  /** A pointer to a typed kernel struct (tp_btf arguments, bpf_get_current_task_btf). */
  | "btf_id"
  /** A kernel pointer to something that is not a struct: only to pass around. */
  | "opaque_mem";

/** A register value. Pointers are `base + off + var` with `var` a range. */
export interface Reg {
  readonly kind: RegKind;
  /** For scalars: the value; for pointers: the variable part of the offset. */
  readonly val: Scalar;
  /** Fixed part of a pointer's offset. */
  readonly off: number;
  /** The pointer may be NULL (map lookups, ring buffer reservations) until checked. */
  readonly maybeNull: boolean;
  /**
   * Identity shared by copies: for maybe-NULL pointers (a NULL check applies
   * to every copy) and for scalars copied with `mov` (a bound learnt on one
   * copy applies to all).
   */
  readonly id: number;
  /** For ring buffer records: the reservation this pointer must be released with. */
  readonly refId: number;
  /** map_ptr / map_value: which map. */
  readonly map?: MapInfo;
  /** ringbuf_mem: size of the record. */
  readonly memSize?: number;
  /** btf_id: the struct pointed to. */
  readonly struct?: string;
  /** btf_id: the kernel guarantees the pointer is valid (may be passed to helpers). */
  readonly trusted?: boolean;
  /**
   * btf_id: read from a field the kernel keeps valid under RCU (MEM_RCU):
   * may be passed to helpers, but is not known to be non-NULL.
   */
  readonly rcu?: boolean;
  /** stack: whose frame (0: the main program's; n: the n-th nested call's). */
  readonly frame: number;
}

const ZERO = known(0);

/** The uninitialized register. */
export const UNINIT: Reg = makeReg("uninit", ZERO, 0);

/** A scalar register (shared for small constants and unknowns: registers are immutable). */
export function scalarReg(val: Scalar, id = 0): Reg {
  if (id === 0) {
    if (val === UNKNOWN_64) return UNKNOWN_SCALAR;
    const i = sharedConstIndex(val);
    if (i >= 0) return SMALL_REGS[i] ??= makeReg("scalar", val, 0);
  }
  return makeReg("scalar", val, id);
}

const UNKNOWN_64 = unknown(64);
const SMALL_REGS: Reg[] = [];

/**
 * Every register value has all fields, in one order: one object shape for
 * the JavaScript engine, which keeps property access fast.
 */
function makeReg(kind: RegKind, val: Scalar, id: number): Reg {
  return {
    kind,
    val,
    off: 0,
    maybeNull: false,
    id,
    refId: 0,
    map: undefined,
    memSize: undefined,
    struct: undefined,
    trusted: undefined,
    rcu: undefined,
    frame: 0,
  };
}

/** An unknown 64-bit number. */
export const UNKNOWN_SCALAR: Reg = makeReg("scalar", UNKNOWN_64, 0);

/** A pointer register with a zero offset. */
export function pointerReg(kind: RegKind, extra: Partial<Reg> = {}): Reg {
  return Object.assign(makeReg(kind, ZERO, 0), extra);
}

/** Is the value a pointer (anything but a number or nothing)? */
export function isPointer(r: Reg): boolean {
  return r.kind !== "scalar" && r.kind !== "uninit";
}

/** Name of a register's type, in the kernel's words, for messages. */
export function regTypeName(r: Reg): string {
  const base = {
    uninit: "uninitialized",
    scalar: "scalar",
    ctx: "ctx",
    stack: "fp",
    map_ptr: "map_ptr",
    map_value: "map_value",
    ringbuf_mem: "ringbuf_mem",
    btf_id: `ptr_${r.struct ?? "btf"}`,
    opaque_mem: "untrusted_mem",
  }[r.kind];
  return r.maybeNull ? `${base}_or_null` : base;
}

/** Register description for messages: `scalar(umax=255)`, `fp-8`, `map_value(off=4)`. */
export function describeReg(r: Reg): string {
  if (r.kind === "scalar") return `scalar(${scalarToString(r.val)})`;
  if (r.kind === "uninit") return "uninitialized";
  const v = isConst(r.val) ? "" : `,var=${scalarToString(r.val)}`;
  if (r.kind === "stack" && !v) return `fp${r.off}`;
  return `${regTypeName(r)}(off=${r.off}${v})`;
}

/** Byte states of the stack. */
export const enum StackByte {
  /** Never written on this path. */
  Invalid = 0,
  /** Holds some number. */
  Misc = 1,
  /** Holds zero. */
  Zero = 2,
  /** Part of a register saved with an aligned 8-byte store (see `spills`). */
  Spill = 3,
  /** Part of a pointer whose other bytes were overwritten: reading it leaks an address. */
  PointerPart = 4,
}

/** Stack frame size. */
export const STACK_SIZE = 512;

/** One path's machine state. */
export class MachineState {
  constructor(
    /** R0-R10. */
    readonly regs: Reg[],
    /** Byte states, index 0 is fp-512, index 511 is fp-1. Call `ownStack()` before changing. */
    public stack: Uint8Array,
    /** Saved registers per 8-byte slot (slot 0 is fp-512..fp-505). Same rule. */
    public spills: (Reg | undefined)[],
    /**
     * Unreleased references (ring buffer reservations): id to the
     * instruction that made it. Shared between copies until changed.
     */
    public refs: ReadonlyMap<number, number>,
    /**
     * True while `stack` and `spills` are shared with a copy (copy on
     * write). Plain fields rather than #private ones: this object is made
     * at every fork, and V8 initializes class fields with an extra call.
     */
    private shared: boolean,
    /** Slots 0-31 and 32-63 holding a saved register (so updates visit only those). */
    private spillLo: number,
    private spillHi: number,
    /** Callers' frames while a bpf-to-bpf call runs (innermost last); shared, never changed. */
    public frames: readonly CallerFrame[],
    /** The subprogram the current frame runs (0: the main program). */
    public sub: number,
    /** The frame whose stack `stack` and `spills` are (frames.length but inside inFrame). */
    public frameNo: number,
  ) {}

  /** A copy that can be changed independently (the stack is shared until written). */
  clone(): MachineState {
    this.shared = true;
    return new MachineState(
      this.regs.slice(),
      this.stack,
      this.spills,
      this.refs,
      true,
      this.spillLo,
      this.spillHi,
      this.frames,
      this.sub,
      this.frameNo,
    );
  }

  /**
   * Runs `fn` with `stack` and `spills` being those of caller frame `f`
   * (reached through a pointer a caller passed down); what `fn` changes is
   * kept in a new copy of that frame.
   */
  inFrame<T>(f: number, fn: () => T): T {
    const saved = this.frames[f];
    const mine = {
      stack: this.stack,
      spills: this.spills,
      spillLo: this.spillLo,
      spillHi: this.spillHi,
      shared: this.shared,
      sub: this.sub,
      frameNo: this.frameNo,
    };
    this.stack = saved.stack;
    this.spills = saved.spills as (Reg | undefined)[];
    this.spillLo = saved.spillLo;
    this.spillHi = saved.spillHi;
    this.shared = true;
    this.sub = saved.sub;
    this.frameNo = f;
    try {
      return fn();
    } finally {
      if (this.stack !== saved.stack || this.spills !== saved.spills) {
        const frames = this.frames.slice();
        frames[f] = {
          ...saved,
          stack: this.stack,
          spills: this.spills,
          spillLo: this.spillLo,
          spillHi: this.spillHi,
        };
        this.frames = frames;
      }
      this.stack = mine.stack;
      this.spills = mine.spills;
      this.spillLo = mine.spillLo;
      this.spillHi = mine.spillHi;
      this.shared = mine.shared;
      this.sub = mine.sub;
      this.frameNo = mine.frameNo;
    }
  }

  /** Replaces values saved in callers' frames (registers and stack) with `fn(value)`. */
  forEachSavedValue(fn: (r: Reg) => Reg): void {
    if (this.frames.length === 0) return;
    this.frames = this.frames.map((f) => {
      const regs = f.regs.map(fn);
      const spills = f.spills.map((x) => x === undefined ? x : fn(x));
      return { ...f, regs, spills };
    });
  }

  /**
   * Enters subprogram `sub` (a bpf-to-bpf call returning to `returnPc`): the
   * caller's registers and stack are saved, the callee gets R1-R5, a frame
   * pointer and an empty stack of its own.
   */
  pushFrame(returnPc: number, sub: number): void {
    const frame: CallerFrame = {
      regs: this.regs.slice(),
      stack: this.stack,
      spills: this.spills,
      spillLo: this.spillLo,
      spillHi: this.spillHi,
      refs: this.refs,
      returnPc,
      sub: this.sub,
    };
    this.frames = [...this.frames, frame];
    this.sub = sub;
    this.frameNo = this.frames.length;
    for (let r = 0; r <= 9; r++) if (r === 0 || r > 5) this.regs[r] = UNINIT;
    this.regs[10] = pointerReg("stack", { frame: this.frameNo });
    this.stack = new Uint8Array(STACK_SIZE);
    this.spills = new Array<Reg | undefined>(STACK_SIZE / 8).fill(undefined);
    this.spillLo = this.spillHi = 0;
    this.shared = false;
  }

  /** Returns to the caller (R0 is kept, R1-R5 become unset); gives the caller's frame. */
  popFrame(): CallerFrame {
    const frame = this.frames[this.frames.length - 1];
    this.frames = this.frames.slice(0, -1);
    this.sub = frame.sub;
    this.frameNo = this.frames.length;
    const r0 = this.regs[0];
    for (let r = 0; r <= 10; r++) this.regs[r] = frame.regs[r];
    this.regs[0] = r0;
    for (let r = 1; r <= 5; r++) this.regs[r] = UNINIT;
    // The saved stack may be restored by other paths too: copy it before a change.
    this.stack = frame.stack;
    this.spills = frame.spills as (Reg | undefined)[];
    this.spillLo = frame.spillLo;
    this.spillHi = frame.spillHi;
    this.shared = true;
    return frame;
  }

  /** Saves a register in a stack slot (call ownStack() first). */
  setSpill(slot: number, r: Reg): void {
    this.spills[slot] = r;
    if (slot < 32) this.spillLo |= 1 << slot;
    else this.spillHi |= 1 << (slot - 32);
  }

  /** Forgets the register saved in a stack slot (call ownStack() first). */
  clearSpill(slot: number): void {
    this.spills[slot] = undefined;
    if (slot < 32) this.spillLo &= ~(1 << slot);
    else this.spillHi &= ~(1 << (slot - 32));
  }

  /** Replaces saved registers with `fn(saved)`, visiting only occupied slots. */
  private mapSpills(fn: (r: Reg) => Reg): void {
    for (let half = 0; half < 2; half++) {
      let bits = half === 0 ? this.spillLo : this.spillHi;
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        const i = half * 32 + 31 - Math.clz32(low);
        const s = this.spills[i]!;
        const t = fn(s);
        if (t === s) continue;
        this.ownStack();
        this.spills[i] = t;
      }
    }
  }

  /** Makes the stack this state's own before a change. */
  ownStack(): void {
    if (!this.shared) return;
    this.stack = this.stack.slice();
    this.spills = this.spills.slice();
    this.shared = false;
  }

  /** Adds a reference (copy on write). */
  addRef(id: number, at: number): void {
    this.refs = new Map(this.refs).set(id, at);
  }

  /** Drops a reference (copy on write). */
  dropRef(id: number): void {
    if (!this.refs.has(id)) return;
    const m = new Map(this.refs);
    m.delete(id);
    this.refs = m;
  }

  /** Every register and spilled register, for updates by id. */
  forEachValue(fn: (r: Reg) => Reg): void {
    for (let i = 0; i < this.regs.length; i++) this.regs[i] = fn(this.regs[i]);
    this.mapSpills(fn);
  }

  /** Scalars (registers and saved) with scalar id `id` get the value `val`. */
  setLinkedScalars(id: number, val: Scalar): void {
    const regs = this.regs;
    for (let i = 0; i < regs.length; i++) {
      const r = regs[i];
      if (r.id === id && r.kind === "scalar") regs[i] = scalarReg(val, id);
    }
    this.mapSpills((s) => s.id === id && s.kind === "scalar" ? scalarReg(val, id) : s);
  }

  /** Pointers (registers and saved) with id `id` are replaced by `fn(pointer)`. */
  replacePointers(id: number, fn: (r: Reg) => Reg): void {
    const regs = this.regs;
    for (let i = 0; i < regs.length; i++) {
      const r = regs[i];
      if (r.id === id && isPointer(r)) regs[i] = fn(r);
    }
    this.mapSpills((s) => s.id === id && isPointer(s) ? fn(s) : s);
  }
}

const NO_REFS: ReadonlyMap<number, number> = new Map();

/** The state on entry: R1 = ctx, R10 = frame pointer, everything else unset. */
export function entryState(): MachineState {
  const regs = new Array<Reg>(11).fill(UNINIT);
  regs[1] = pointerReg("ctx");
  regs[10] = pointerReg("stack");
  return new MachineState(
    regs,
    new Uint8Array(STACK_SIZE),
    new Array<Reg | undefined>(STACK_SIZE / 8).fill(undefined),
    NO_REFS,
    false,
    0,
    0,
    NO_FRAMES,
    0,
    0,
  );
}

const NO_FRAMES: readonly CallerFrame[] = [];

/** A caller's state while its bpf-to-bpf call runs. */
export interface CallerFrame {
  readonly regs: readonly Reg[];
  readonly stack: Uint8Array;
  readonly spills: readonly (Reg | undefined)[];
  readonly spillLo: number;
  readonly spillHi: number;
  /** The caller's references when it called (to find those the callee leaked). */
  readonly refs: ReadonlyMap<number, number>;
  /** Where the caller continues. */
  readonly returnPc: number;
  /** The caller's subprogram. */
  readonly sub: number;
}

/**
 * Ids of maybe-NULL pointers and references must correspond one to one
 * between two states for one to stand in for the other. The pairs found so
 * far in the current comparison (few: a list beats a map).
 */
const idFrom: number[] = [], idTo: number[] = [];
let idPairs = 0;

/** Is old id `a` the counterpart of current id `b`? (Records the pair on first sight.) */
function idsMatch(a: number, b: number): boolean {
  if (a === 0 || b === 0) return a === b;
  for (let i = 0; i < idPairs; i++) if (idFrom[i] === a) return idTo[i] === b;
  for (let i = 0; i < idPairs; i++) if (idTo[i] === b) return false;
  idFrom[idPairs] = a;
  idTo[idPairs] = b;
  idPairs++;
  return true;
}

/**
 * Is every concrete state described by `cur` also described by `old`? If
 * `old` was fully explored without error, `cur` then needs no exploration.
 * `live` says which registers may still be read; `slotsLo`/`slotsHi` (bit
 * sets of 8-byte stack slots 0-31 and 32-63; all when absent) which stack
 * slots. States share register values and stack arrays until one changes
 * them, so shared parts are compared by identity first.
 */
export function subsumes(
  old: MachineState,
  cur: MachineState,
  live: number,
  exact: boolean,
  slotsLo = -1,
  slotsHi = -1,
): boolean {
  const oRegs = old.regs, cRegs = cur.regs;
  // Cheap first: a number known exactly in `old` must be the same number in `cur`.
  for (let r = 0; r < 10; r++) {
    if ((live & (1 << r)) === 0) continue;
    const o = oRegs[r], c = cRegs[r];
    if (o === c) continue;
    if (o.kind !== c.kind && o.kind !== "uninit") return false;
    if (
      o.kind === "scalar" && isConst(o.val) &&
      (!isConst(c.val) || c.val.vHi !== o.val.vHi || c.val.vLo !== o.val.vLo)
    ) return false;
  }
  idPairs = 0;
  for (let r = 0; r < 10; r++) {
    if ((live & (1 << r)) === 0) continue;
    if (!regSubsumes(oRegs[r], cRegs[r], exact)) return false;
  }
  const os = old.stack, cs = cur.stack;
  // Live slots in ascending order: slot = half * 32 + bit.
  for (let half = 0; half < 2; half++) {
    let bits = half === 0 ? slotsLo : slotsHi;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      const slot = half * 32 + 31 - Math.clz32(low);
      if (os !== cs) {
        for (let i = slot * 8; i < slot * 8 + 8; i++) {
          const o = os[i], c = cs[i];
          if (o === c) continue;
          if (exact) return false;
          if (o === StackByte.Invalid) continue;
          if (o === StackByte.Misc && c === StackByte.Zero) continue;
          if (
            o === StackByte.Misc && c === StackByte.Spill && cur.spills[slot]?.kind === "scalar"
          ) {
            continue;
          }
          return false;
        }
      }
    }
  }
  // Saved registers, in the same slot order.
  for (let half = 0; half < 2; half++) {
    let bits = half === 0 ? slotsLo : slotsHi;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      const s = half * 32 + 31 - Math.clz32(low);
      const o = old.spills[s];
      if (o === undefined || os[s * 8] !== StackByte.Spill) continue;
      const c = cur.spills[s];
      if (c === undefined || cs[s * 8] !== StackByte.Spill) return false;
      if (!regSubsumes(o, c, exact)) return false;
    }
  }
  if (old.refs.size !== cur.refs.size) return false;
  if (old.refs.size === 0) return true;
  for (const id of old.refs.keys()) {
    let matched = false;
    for (const cid of cur.refs.keys()) {
      if (idsMatch(id, cid)) {
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

function regSubsumes(o: Reg, c: Reg, exact: boolean): boolean {
  if (o.kind === "uninit") return exact ? c.kind === "uninit" : true;
  if (o === c) {
    // The same value: only the ids must correspond.
    if (o.kind === "scalar") return o.id === 0 || idsMatch(o.id, o.id);
    return idsMatch(o.id, o.id) && idsMatch(o.refId, o.refId);
  }
  if (o.kind !== c.kind) return false;
  if (o.kind === "scalar") {
    if (exact) return scalarEquals(o.val, c.val) && idsMatch(o.id, c.id);
    // Scalar ids only matter for linked bounds; a fresh id in cur is fine.
    return scalarContains(o.val, c.val) && (o.id === 0 || idsMatch(o.id, c.id));
  }
  if (o.off !== c.off || o.maybeNull !== c.maybeNull || o.map !== c.map) return false;
  if (
    o.memSize !== c.memSize || o.struct !== c.struct || o.trusted !== c.trusted ||
    o.rcu !== c.rcu || o.frame !== c.frame
  ) {
    return false;
  }
  if (!idsMatch(o.id, c.id) || !idsMatch(o.refId, c.refId)) return false;
  return exact ? scalarEquals(o.val, c.val) : scalarContains(o.val, c.val);
}
