/**
 * Stack traces in BPF programs: a stack trace map (BPF_MAP_TYPE_STACK_TRACE,
 * stack id -> array of u64 return addresses) and `bpf_get_stackid`, which
 * walks the current kernel or user stack, stores it in the map and returns
 * its id. Tools key their counts by stack ids and read the addresses back in
 * user space (lib/cli/stack_maps.ts).
 *
 * When the map is full (-ENOMEM) or a different stack already sits in the
 * hash bucket (-EEXIST), bpf_get_stackid fails and the stack is lost. The
 * tools say so at the end, as bcc's do ("WARNING: N stack traces could not
 * be displayed... --stack-storage-size"), from a per-CPU error counter the
 * `stackId` macro keeps.
 *
 * @example Count samples by kernel stack
 * ```ts
 * import { kernelLayouts } from "./layouts.ts";
 * import { Probe } from "./program.ts";
 * import { r7 } from "./registers.ts";
 * import { defineStackErrorMap, defineStackMap, stackId } from "./stacks.ts";
 * const stacks = defineStackMap({ name: "stacks" });
 * const errors = defineStackErrorMap();
 * const p = new Probe("prof", "perf_event", { kind: "perf_event", frequency: 49 }, { kind: "none" }, kernelLayouts);
 * stackId(p, r7, stacks, { user: false, errors });
 * ```
 *
 * @module
 */
import { defineMap, type MapDef } from "./maps.ts";
import type { ProgramBuilder } from "./builder.ts";
import { CTX, r0, r1, r10, r2, r3, type Reg } from "./registers.ts";

/** Flags of bpf_get_stackid (uapi linux/bpf.h). */
export const BPF_F_SKIP_FIELD_MASK = 0xff;
/** bpf_get_stackid flag: record the user stack instead of the kernel's. */
export const BPF_F_USER_STACK = 1 << 8;
export const BPF_F_FAST_STACK_CMP = 1 << 9;
export const BPF_F_REUSE_STACKID = 1 << 10;

/** Errors of bpf_get_stackid, negated as the helper returns them. */
export const EFAULT = 14;
export const EEXIST = 17;
export const ENOMEM = 12;

/** The kernel's limit for one stack (sysctl kernel.perf_event_max_stack, default). */
export const PERF_MAX_STACK_DEPTH = 127;

/** Slots of the error counter: which failure happened. */
export const STACK_ERROR_SLOTS = { collision: 0, full: 1 } as const;

/**
 * Declares a stack trace map: `storageSize` unique stacks (bcc's
 * --stack-storage-size, default 16384) of at most `maxDepth` frames.
 */
export function defineStackMap(
  opts: { name?: string; storageSize?: number; maxDepth?: number } = {},
): MapDef {
  const depth = opts.maxDepth ?? PERF_MAX_STACK_DEPTH;
  return defineMap({
    name: opts.name ?? "stack_traces",
    type: "stack_trace",
    keySize: 4,
    valueSize: 8 * depth,
    maxEntries: opts.storageSize ?? 16384,
  });
}

/**
 * Declares the per-CPU counter of lost stacks: one u64 per cause
 * (STACK_ERROR_SLOTS: -EEXIST collisions, -ENOMEM full map), at key 0.
 */
export function defineStackErrorMap(name = "stack_errors"): MapDef {
  return defineMap({ name, type: "percpu_array", keySize: 4, valueSize: 16, maxEntries: 1 });
}

/**
 * dst = bpf_get_stackid(ctx, stacks, flags): the id of the current user
 * (`user: true`) or kernel stack, or a negative errno (-EFAULT: there is no
 * such stack, e.g. the user stack of a kernel thread). With `errors`, a
 * failure that loses a stack (-EEXIST, -ENOMEM) is counted there. `dst` must
 * be r7-r9 (it outlives helper calls); `skip` drops that many innermost frames.
 */
export function stackId<P extends ProgramBuilder>(
  p: P,
  dst: Reg,
  stacks: MapDef,
  opts: { user: boolean; errors?: MapDef; skip?: number; reuse?: boolean },
): P {
  if (dst.n < 6 || dst.n > 9) throw new Error(`stackId: ${dst} does not survive helper calls`);
  const flags = (opts.user ? BPF_F_USER_STACK : 0) | (opts.reuse ? BPF_F_REUSE_STACKID : 0) |
    ((opts.skip ?? 0) & BPF_F_SKIP_FIELD_MASK);
  p.mov(r1, CTX).loadMap(r2, stacks).mov(r3, flags).call("get_stackid").mov(dst, r0);
  const errors = opts.errors;
  if (!errors) return p;
  const done = p.label();
  p.jumpIf(dst, "s>=", 0, done).jumpIf(dst, "==", -EFAULT, done);
  const key = p.stack(4);
  p.store("u32", r10, key, 0).loadMap(r1, errors).stackPtr(r2, key).call("map_lookup_elem");
  p.jumpIf(r0, "==", 0, done);
  // Per-CPU slots: no atomics needed. Collisions in slot 0, everything else in slot 1.
  const full = p.label(), add = p.label();
  p.jumpIf(dst, "!=", -EEXIST, full).mov(r1, 8 * STACK_ERROR_SLOTS.collision).goto(add);
  p.bind(full).mov(r1, 8 * STACK_ERROR_SLOTS.full);
  p.bind(add).add(r0, r1).load(r1, "u64", r0, 0).add(r1, 1).store("u64", r0, 0, r1);
  return p.bind(done);
}
