/**
 * Programs on kernel functions through kprobes (entry) and kretprobes
 * (return). Their context is the CPU's registers (`struct pt_regs`): read
 * arguments with `arg()` and the return value with `retval()` of
 * lib/dsl/pt_regs.ts. They build on any kernel (for --dump and the
 * verifier); attaching needs CONFIG_KPROBE_EVENTS, and says so in one line
 * where it is off.
 *
 * @example Count calls of vfs_read
 * ```ts
 * import { defineMap } from "./maps.ts";
 * import { kprobe } from "./kprobe.ts";
 * import { r10 } from "./registers.ts";
 * const calls = defineMap({
 *   name: "calls", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = kprobe("vfs_read");
 * const key = p.stack(4);
 * p.store("u32", r10, key, 0).counterAdd(calls, key, 1).ret(0);
 * const program = p.build();
 * ```
 *
 * @module
 */
import { kernelLayouts, type Layouts } from "./layouts.ts";
import { Probe } from "./program.ts";

/** Options of {@link kprobe}. */
export interface KprobeOptions {
  /** A return probe (kretprobe): runs when the function returns. */
  retprobe?: boolean;
  /** The program's name (default: the function's; 15 characters shown). */
  name?: string;
  /** Layouts (tests); default: the running kernel's. */
  layouts?: Layouts;
}

/** A kprobe-type program on kernel function `func`: entry, or return with `retprobe`. */
export function kprobe(func: string, opts: KprobeOptions = {}): Probe {
  const retprobe = !!opts.retprobe;
  return new Probe(
    opts.name ?? func,
    "kprobe",
    { kind: "kprobe", func, retprobe },
    { kind: "none" },
    opts.layouts ?? kernelLayouts,
  );
}
