/**
 * One load or store instruction, one kind of pointer: the kernel rewrites
 * context accesses (and typed kernel struct reads) per instruction, so an
 * instruction that reaches the context on one path and other memory on
 * another cannot be translated ("same insn cannot be used with different
 * pointers", `save_aux_ptr_type`). Other pointer kinds may mix freely.
 *
 * @module
 */

import { fail } from "./errors.ts";
import { type Reg, regTypeName } from "./state.ts";

/** Kind codes recorded per instruction (0: no path got there yet). */
const CODE: Readonly<Record<Reg["kind"], number>> = {
  uninit: 1,
  scalar: 2,
  ctx: 3,
  stack: 4,
  map_ptr: 5,
  map_value: 6,
  ringbuf_mem: 7,
  btf_id: 8,
  opaque_mem: 9,
};
const NAMES = [
  "",
  "uninitialized",
  "scalar",
  "ctx",
  "fp",
  "map_ptr",
  "map_value",
  "ringbuf_mem",
  "a typed kernel pointer",
  "untrusted_mem",
];

/** Kinds whose accesses the kernel rewrites per instruction (reg_type_mismatch_ok false). */
function rewritten(code: number): boolean {
  return code === CODE.ctx || code === CODE.btf_id;
}

/**
 * Records the kind of pointer instruction `pc` accessed memory through, and
 * fails when another path used a different kind and either is rewritten.
 */
export function checkInsnPtrType(seen: Uint8Array, pc: number, base: Reg): void {
  const code = CODE[base.kind];
  const prev = seen[pc];
  if (prev === 0) {
    seen[pc] = code;
    return;
  }
  if (prev !== code && (rewritten(prev) || rewritten(code))) {
    fail(
      "invalid-mem-access",
      pc,
      `this instruction accesses ${regTypeName(base)} here and ${
        NAMES[prev]
      } on another path: the same instruction cannot be used with different pointers`,
    );
  }
}
