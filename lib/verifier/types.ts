/**
 * The verifier's public vocabulary: what goes in (a program and what it runs
 * against) and what comes out (diagnostics with stable codes).
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import type { MapTypeName, ProgTypeName } from "../../bytecode/prog_types.ts";
import type { HelperProto } from "../../bytecode/helpers.ts";

/**
 * Stable diagnostic codes. Tests, tools and users match on these; the
 * message text may change.
 */
export type DiagnosticCode =
  /** Unknown opcode, reserved field set, bad register number, division by constant zero. */
  | "invalid-opcode"
  /** A jump leaves the program or lands in the second half of an `lddw`. */
  | "jump-out-of-range"
  /** A path runs off the end of the program (or there is no instruction at all). */
  | "no-exit"
  /** An instruction no path reaches. */
  | "unreachable-insn"
  /** A loop that is not provably bounded (infinite, or too long to explore). */
  | "back-edge"
  /** The program is too large, or has too many paths to explore. */
  | "too-complex"
  /** A register is read before anything was written to it (also R1-R5 after a call). */
  | "uninit-register"
  /** Something writes to R10, the read-only frame pointer. */
  | "r10-write"
  /** R0 is not a number when the program exits. */
  | "bad-return-value"
  /** A pointer is turned into a number, or written where user space can read it. */
  | "pointer-leak"
  /** Arithmetic on a pointer that the kernel forbids (unbounded offsets, map pointers...). */
  | "pointer-arithmetic"
  /** A stack access outside the 512-byte frame. */
  | "stack-out-of-bounds"
  /** A stack read of bytes nothing wrote (privileged kernels allow it; we do not). */
  | "uninit-stack"
  /** A context access the program type does not allow (offset, size, write). */
  | "ctx-out-of-bounds"
  /** A map value (or ring buffer record) used before its NULL check. */
  | "null-map-value"
  /** A map value (or ring buffer record) access outside the value. */
  | "map-out-of-bounds"
  /** A load or store through something that is not readable memory for BPF. */
  | "invalid-mem-access"
  /** A call to a helper id the kernel does not have. */
  | "unknown-helper"
  /** A helper the program type (or its license) may not call. */
  | "helper-not-allowed"
  /** A helper argument of the wrong type, size or state. */
  | "bad-helper-arg"
  /** A map fd that was not declared in `options.maps`. */
  | "unknown-map"
  /** A ring buffer reservation not submitted or discarded on some path. */
  | "unreleased-reference";

/** Every code, for tests and documentation. */
export const DIAGNOSTIC_CODES: readonly DiagnosticCode[] = [
  "invalid-opcode",
  "jump-out-of-range",
  "no-exit",
  "unreachable-insn",
  "back-edge",
  "too-complex",
  "uninit-register",
  "r10-write",
  "bad-return-value",
  "pointer-leak",
  "pointer-arithmetic",
  "stack-out-of-bounds",
  "uninit-stack",
  "ctx-out-of-bounds",
  "null-map-value",
  "map-out-of-bounds",
  "invalid-mem-access",
  "unknown-helper",
  "helper-not-allowed",
  "bad-helper-arg",
  "unknown-map",
  "unreleased-reference",
];

/** One problem found in a program. */
export interface Diagnostic {
  /** Stable code. */
  code: DiagnosticCode;
  /** Slot index of the instruction (as the kernel counts: `lddw` takes two). */
  index: number;
  /** The instruction, disassembled. */
  insn: string;
  /** What is wrong, in words. */
  message: string;
  /** The DSL source location ("file.ts:line") that emitted the instruction, when known. */
  origin?: string;
}

/** The outcome of `verify`. */
export interface VerifyResult {
  /** True when there is no diagnostic. */
  ok: boolean;
  /** What is wrong; empty when ok. The verifier stops at the first error on a path. */
  diagnostics: Diagnostic[];
  /** Instructions simulated (paths times length): a measure of verification cost. */
  processed: number;
}

/** What the verifier needs to know about a map referenced by `lddw` (fd or index). */
export interface MapInfo {
  /** Map type: decides the helpers it works with and what a lookup returns. */
  type: MapTypeName;
  /** Key bytes the helpers read from the program's pointer. */
  keySize: number;
  /** Value bytes: the bounds of a map value pointer. */
  valueSize: number;
  /** Entries (array indexes must stay below it). */
  maxEntries: number;
  /** Map flags (BPF_F_RDONLY_PROG = 0x80 and BPF_F_WRONLY_PROG = 0x100 restrict programs). */
  flags?: number;
  /** Name, for messages. */
  name?: string;
}

/**
 * What a load from a typed kernel struct (PTR_TO_BTF_ID) yields: a number,
 * or a pointer to another struct.
 */
export type BtfMemberAccess =
  | { kind: "scalar" }
  /** `field` is "struct.member" of the pointer's own field. */
  | { kind: "pointer"; struct: string; field?: string }
  /** A pointer to something that is not a struct (`char *`): may not be dereferenced. */
  | { kind: "untrusted-mem" }
  | { kind: "error"; message: string };

/**
 * The kernel's type information, as the verifier needs it for tp_btf
 * programs. Kept as an interface so the verifier stays pure: lib/btf (or a
 * test fixture) provides it.
 */
export interface KernelTypes {
  /** Size in bytes of `struct name`, or undefined if there is no such struct. */
  structSize(name: string): number | undefined;
  /** What reading `size` bytes at byte `offset` of `struct name` gives. */
  access(name: string, offset: number, size: number): BtfMemberAccess;
}

/**
 * One argument slot of a tp_btf context (each is 8 bytes). Pointers to
 * anything but a struct (`char *`) are plain numbers to the kernel: "scalar".
 */
export type CtxArg =
  | { kind: "scalar" }
  /** A pointer to a struct; `nullable` when the tracepoint may pass NULL. */
  | { kind: "pointer"; struct: string; nullable?: boolean };

/** Options of `verify`. */
export interface VerifyOptions {
  /** Program type; decides the context layout, the helpers allowed and the return range. */
  progType: ProgTypeName;
  /**
   * Bytes of context the program may read. For tracepoints: the record size
   * from the format file (the kernel only knows a 2048-byte upper bound, we
   * are stricter). For raw tracepoints: 8 x number of arguments.
   */
  ctxSize?: number;
  /** tp_btf: the tracepoint's arguments, in order. */
  ctxArgs?: readonly CtxArg[];
  /** tp_btf: struct layouts for reads through typed pointers. */
  kernelTypes?: KernelTypes;
  /** Maps by the fd (the `imm`) that `lddw` map loads carry. */
  maps?: ReadonlyMap<number, MapInfo> | Readonly<Record<number, MapInfo>>;
  /**
   * Maps by logical instruction index of the `lddw` that loads them; wins
   * over `maps`. For programs verified before their maps exist.
   */
  mapRefs?: readonly { index: number; map: MapInfo }[];
  /** Helper table to check calls against (default: bytecode/helpers.ts). */
  helpers?: readonly HelperProto[];
  /** License string; GPL-only helpers need a GPL-compatible one (default "GPL"). */
  license?: string;
  /**
   * Instructions the exploration may simulate before giving up. The kernel
   * stops at 1,000,000; ours defaults lower so we never accept what the
   * kernel would find too complex.
   */
  complexityLimit?: number;
  /**
   * The kernel's nr_cpu_ids (possible CPUs): bounds bpf_get_smp_processor_id()
   * as the kernel does. Default: NR_CPUS' maximum, 8192.
   */
  possibleCpus?: number;
  /**
   * Allow kernel pointers to be written to maps and helper outputs (the
   * privileged kernel does). Off by default: a tool should not leak kernel
   * addresses to user space.
   */
  allowPointerLeaks?: boolean;
}

/** A program as `verify` accepts it. */
export type ProgramInput = Uint8Array | readonly Insn[];
