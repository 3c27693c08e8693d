/**
 * BPF registers as values, so that `p.mov(r7, r8)` (register) and
 * `p.mov(r7, 8)` (immediate) cannot be confused.
 * r0: return values; r1-r5: call arguments (clobbered by calls); r6-r9:
 * preserved across calls; r10: read-only frame pointer. The builder keeps the
 * context pointer in r6, so tools use r7-r9 for values that must survive calls.
 */
export class Reg {
  constructor(readonly n: number) {}
  toString(): string {
    return `r${this.n}`;
  }
}
export const r0: Reg = new Reg(0);
export const r1: Reg = new Reg(1);
export const r2: Reg = new Reg(2);
export const r3: Reg = new Reg(3);
export const r4: Reg = new Reg(4);
export const r5: Reg = new Reg(5);
export const r6: Reg = new Reg(6);
export const r7: Reg = new Reg(7);
export const r8: Reg = new Reg(8);
export const r9: Reg = new Reg(9);
export const r10: Reg = new Reg(10);
/** The register that holds the program's context pointer after the prologue. */
export const CTX: Reg = r6;

/** A register or a 32-bit immediate. */
export type Operand = Reg | number;
