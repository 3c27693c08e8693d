/**
 * The BPF instruction set as data: opcodes, instruction constructors,
 * byte-exact encoding, the helper table and a disassembler that prints what
 * the kernel prints. Pure: no I/O, no Deno namespace.
 *
 * @example
 * ```ts
 * import { call, disassemble, encode, exit, mov64Imm } from "./mod.ts";
 * const prog = [call(14), mov64Imm(0, 0), exit()];
 * encode(prog); // 24 bytes, starting 85 00 00 00 0e 00 00 00
 * disassemble(prog)[0]; // "   0: (85) call bpf_get_current_pid_tgid#14"
 * ```
 *
 * @module
 */

export type { Insn } from "./insn.ts";
export * from "./opcodes.ts";
export * from "./build.ts";
export { decode, encode, SLOT_BYTES, slotCount, slotOffsets, slotsOf } from "./encode.ts";
export {
  type HelperArg,
  type HelperAvailability,
  helperById,
  helperByName,
  helperDisplayName,
  type HelperProto,
  type HelperRet,
  HELPERS,
} from "./helpers.ts";
export { isValidOpcode, type OpcodeFamily, opcodeFamily, VALID_OPCODES } from "./valid.ts";
export {
  className,
  type DisasmOptions,
  disassemble,
  disassembleOne,
  mapById,
  slotLabel,
} from "./disasm.ts";
