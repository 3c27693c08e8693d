/**
 * What each program type may do with its context (R1 on entry), following
 * the kernel's `*_is_valid_access` functions, and stricter where we know
 * more (a tracepoint's record size from its format file).
 *
 * @module
 */

import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import { unknownOfSize } from "./scalar.ts";
import { pointerReg, type Reg, scalarReg } from "./state.ts";
import type { CtxArg } from "./types.ts";

/** The answer for one access: the loaded value, or why it is refused. */
export type CtxAnswer = { ok: true; value?: Reg } | { ok: false; why: string };

/** x86_64 `struct pt_regs` (kprobe context, start of the perf_event context). */
const PT_REGS_SIZE = 168;
/** `struct bpf_perf_event_data`: pt_regs, then sample_period and addr (u64 each). */
const PERF_EVENT_DATA_SIZE = PT_REGS_SIZE + 16;
/** The kernel lets tracepoint programs read up to PERF_MAX_TRACE_SIZE. */
const PERF_MAX_TRACE_SIZE = 2048;
/** Raw tracepoints and tp_btf have at most 12 u64 arguments. */
const MAX_FUNC_ARGS = 12;

/** Everything the context rules need. */
export interface CtxRules {
  progType: ProgTypeName;
  ctxSize?: number;
  ctxArgs?: readonly CtxArg[];
  gpl: boolean;
}

/** Program types whose context and return rules this verifier knows. */
export const SUPPORTED_PROG_TYPES: readonly ProgTypeName[] = [
  "socket_filter",
  "kprobe",
  "tracepoint",
  "perf_event",
  "raw_tracepoint",
  "tp_btf",
];

const no = (why: string): CtxAnswer => ({ ok: false, why });
const num = (size: number): CtxAnswer => ({ ok: true, value: scalarReg(unknownOfSize(size)) });

/**
 * Checks a context access of `size` bytes at `off`; `write` for stores.
 * One function per program type: a tool uses one or two types, and only
 * their rules need compiling at start.
 */
export function ctxAccess(rules: CtxRules, off: number, size: number, write: boolean): CtxAnswer {
  if (off < 0) return no(`negative context offset ${off}`);
  if (off % size !== 0) {
    return no(`misaligned context access: offset ${off} is not a multiple of ${size}`);
  }
  switch (rules.progType) {
    case "tracepoint":
      return tracepointAccess(rules, off, size, write);
    case "raw_tracepoint":
      return rawTracepointAccess(rules, off, size, write);
    case "kprobe":
      return kprobeAccess(off, size, write);
    case "perf_event":
      return perfEventAccess(off, size, write);
    case "tp_btf":
      return tpBtfAccess(rules, off, size, write);
    case "socket_filter":
      return skbAccess(off, size, write);
  }
}

function tracepointAccess(rules: CtxRules, off: number, size: number, write: boolean): CtxAnswer {
  if (write) return no("the tracepoint context is read-only");
  if (off < 8) {
    return no(
      `the first 8 bytes of a tracepoint record (common fields) are not readable, offset ${off}`,
    );
  }
  const limit = rules.ctxSize ?? PERF_MAX_TRACE_SIZE;
  if (off + size > limit) {
    return no(`access at offset ${off} size ${size} is beyond the ${limit}-byte tracepoint record`);
  }
  return num(size);
}

function rawTracepointAccess(
  rules: CtxRules,
  off: number,
  size: number,
  write: boolean,
): CtxAnswer {
  if (write) return no("the raw tracepoint context is read-only");
  const limit = Math.min(rules.ctxSize ?? MAX_FUNC_ARGS * 8, MAX_FUNC_ARGS * 8);
  if (off + size > limit) {
    return no(`access at offset ${off} size ${size} is beyond the ${limit / 8} arguments`);
  }
  return num(size);
}

function kprobeAccess(off: number, size: number, write: boolean): CtxAnswer {
  if (write) return no("the kprobe context (pt_regs) is read-only");
  if (off + size > PT_REGS_SIZE) {
    return no(`access at offset ${off} size ${size} is beyond pt_regs (${PT_REGS_SIZE} bytes)`);
  }
  return num(size);
}

function perfEventAccess(off: number, size: number, write: boolean): CtxAnswer {
  if (write) return no("the perf_event context is read-only");
  if (off + size > PERF_EVENT_DATA_SIZE) {
    return no(
      `access at offset ${off} size ${size} is beyond bpf_perf_event_data (${PERF_EVENT_DATA_SIZE} bytes)`,
    );
  }
  if (off < PT_REGS_SIZE && size !== 8) {
    return no("registers in the perf_event context are read as u64");
  }
  return num(size);
}

function tpBtfAccess(rules: CtxRules, off: number, size: number, write: boolean): CtxAnswer {
  if (write) return no("tp_btf arguments are read-only");
  if (off % 8 !== 0) return no(`tp_btf context offset ${off} is not a multiple of 8`);
  const args = rules.ctxArgs;
  const i = off / 8;
  if (!args) return no("the tracepoint's argument types are unknown (pass ctxArgs)");
  if (i >= args.length || i >= MAX_FUNC_ARGS) {
    return no(`the tracepoint has ${args.length} arguments, there is no argument ${i}`);
  }
  const arg = args[i];
  if (arg.kind !== "pointer") return num(size);
  if (size !== 8) return no(`argument ${i} is a pointer: read it with size 8, not ${size}`);
  return {
    ok: true,
    value: pointerReg("btf_id", {
      struct: arg.struct,
      trusted: true,
      maybeNull: !!arg.nullable,
    }),
  };
}

/**
 * `struct __sk_buff` for socket filters: the u32 fields from `len` to `hash`
 * and `napi_id` are readable (also by narrower loads); `cb[0..4]` is
 * readable and writable with any aligned size up to 8 (bpf_skb_is_valid_access).
 * Packet pointers and socket fields are refused.
 */
function skbAccess(off: number, size: number, write: boolean): CtxAnswer {
  const CB_START = 48, CB_END = 68;
  if (off >= CB_START && off < CB_END) {
    if (off + size > CB_END) return no(`access at offset ${off} size ${size} runs past cb[4]`);
    return write ? { ok: true } : num(size);
  }
  const readable = (o: number) => (o >= 0 && o < 72) || (o >= 84 && o < 88);
  if (size > 4) return no(`__sk_buff fields are u32: size ${size} is not allowed`);
  const field = off - (off % 4);
  if (write) return no(`only __sk_buff cb[0..4] is writable (offset ${off} size ${size})`);
  if (!readable(field)) return no(`__sk_buff offset ${off} is not readable by socket filters`);
  return num(size);
}
