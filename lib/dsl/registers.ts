/**
 * BPF registers as values, so that `p.mov(r7, r8)` (register) and
 * `p.mov(r7, 8)` (immediate) cannot be confused.
 * r0: return values; r1-r5: call arguments (clobbered by calls); r6-r9:
 * preserved across calls; r10: read-only frame pointer. The builder keeps the
 * context pointer in r6, so tools use r7-r9 for values that must survive calls.
 */
export class Reg {
  /** `n` is the register number, 0-10. */
  constructor(readonly n: number) {}
  /** "r7": as the disassembler and diagnostics name it. */
  toString(): string {
    return `r${this.n}`;
  }
}
/** Return value of helper calls, and of the program at exit. */
export const r0: Reg = new Reg(0);
/** First call argument; holds the context pointer when the program starts. */
export const r1: Reg = new Reg(1);
/** Second call argument; clobbered by calls. */
export const r2: Reg = new Reg(2);
/** Third call argument; clobbered by calls. */
export const r3: Reg = new Reg(3);
/** Fourth call argument; clobbered by calls. */
export const r4: Reg = new Reg(4);
/** Fifth call argument; clobbered by calls. */
export const r5: Reg = new Reg(5);
/** Preserved across calls; the builder keeps the context pointer here ({@link CTX}). */
export const r6: Reg = new Reg(6);
/** Preserved across calls: free for values the program keeps. */
export const r7: Reg = new Reg(7);
/** Preserved across calls: free for values the program keeps. */
export const r8: Reg = new Reg(8);
/** Preserved across calls: free for values the program keeps. */
export const r9: Reg = new Reg(9);
/** Read-only frame pointer: the stack is at negative offsets from it. */
export const r10: Reg = new Reg(10);
/** The register that holds the program's context pointer after the prologue. */
export const CTX: Reg = r6;

/** A register or a 32-bit immediate. */
export type Operand = Reg | number;
