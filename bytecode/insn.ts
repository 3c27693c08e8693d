/**
 * One logical BPF instruction.
 *
 * A program is an array of these. Every instruction occupies one 8-byte slot,
 * except the 16-byte `lddw` (opcode 0x18), which occupies two: its second slot's
 * 32-bit immediate is carried here as `imm2`. Jump offsets (`off`, and `imm`
 * for bpf-to-bpf calls and `gotol`) count slots, exactly as the kernel does.
 */
export interface Insn {
  /** The opcode byte: class | size/op | mode/source. */
  code: number;
  /** Destination register, 0..10. */
  dst: number;
  /** Source register, 0..10, or a pseudo source (map fd, call kind). */
  src: number;
  /** Signed 16-bit offset. */
  off: number;
  /** Signed 32-bit immediate. */
  imm: number;
  /** For `lddw` only: the second slot's immediate (upper 32 bits, or map value offset). */
  imm2?: number;
  /** Where this instruction came from (DSL call site, "file.ts:line"), for diagnostics. */
  origin?: string;
}
