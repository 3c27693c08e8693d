/**
 * What a BTF-typed tracepoint (tp_btf) program needs: the `btf_trace_<name>`
 * typedef id for `attach_btf_id`, and the types of the tracepoint's arguments,
 * which the program reads from its context as an array of u64.
 *
 * @module
 */

import { Btf } from "./btf.ts";

/** One argument of a BTF-typed tracepoint. */
export interface TpBtfParam {
  /** Argument name from the kernel's tracepoint prototype, or `arg<N>` when unknown. */
  name: string;
  /** Declared type id. */
  typeId: number;
  /** Whether the argument (typedefs resolved) is a pointer. */
  isPointer: boolean;
  /** For pointers to structs/unions: the struct name, for `Btf.field`. */
  structName?: string;
}

/** Attach target and argument layout of a tp_btf program. */
export interface TpBtfTarget {
  /** Id of the `btf_trace_<name>` typedef: the program's attach_btf_id. */
  typedefId: number;
  /** Tracepoint arguments in order (context slot i holds argument i as a u64). */
  params: TpBtfParam[];
}

/**
 * Looks up a BTF-typed tracepoint. `tpName` is the tracepoint name
 * (`sched_switch`), optionally with its category (`sched:sched_switch`).
 *
 * The `btf_trace_<name>` typedef is a pointer to a FUNC_PROTO whose first
 * parameter is the `void *` tracepoint data, and whose parameter names are not
 * recorded; names come from the kernel's `__traceiter_<name>` function (or
 * `__bpf_trace_<name>`), which has the same prototype with names.
 *
 * @example
 * ```ts
 * import { tpBtfTarget } from "./tp_btf.ts";
 * const target = tpBtfTarget("sched_switch");
 * // params: preempt, prev (struct task_struct *), next, prev_state
 * const nextSlot = target.params.findIndex((p) => p.name === "next");
 * ```
 */
export function tpBtfTarget(tpName: string, btf: Btf = Btf.vmlinux()): TpBtfTarget {
  let known = targetsByBtf.get(btf);
  if (!known) targetsByBtf.set(btf, known = new Map());
  let target = known.get(tpName);
  if (!target) known.set(tpName, target = lookUpTarget(tpName, btf));
  // A copy, so a caller that edits its answer does not edit the next caller's.
  return { typedefId: target.typedefId, params: target.params.map((p) => ({ ...p })) };
}

/**
 * Answers of tpBtfTarget: a tool builds its programs and our verifier checks
 * them, both asking for the same tracepoints.
 */
const targetsByBtf = new WeakMap<Btf, Map<string, TpBtfTarget>>();

function lookUpTarget(tpName: string, btf: Btf): TpBtfTarget {
  const name = tpName.includes(":") ? tpName.slice(tpName.indexOf(":") + 1) : tpName;
  const typedefName = `btf_trace_${name}`;
  const typedefId = btf.findIdByPrefix(typedefName, "TYPEDEF", "btf_trace_");
  if (typedefId === undefined) {
    throw new Error(
      `BTF: no typedef ${typedefName}: '${name}' is not a tracepoint of this kernel (or BTF lacks it)`,
    );
  }
  const protoId = btf.funcProtoOf(typedefId);
  const proto = protoId === undefined ? undefined : btf.type(protoId);
  if (proto?.kind !== "FUNC_PROTO" || proto.params.length === 0) {
    throw new Error(`BTF: ${typedefName} is not a pointer to a tracepoint prototype`);
  }
  const args = proto.params.slice(1);
  const names = namesFromKernelFunction(btf, name, args.map((p) => p.type));
  return {
    typedefId,
    params: args.map((p, i) => {
      const resolved = btf.resolve(p.type);
      const t = btf.type(resolved);
      const param: TpBtfParam = {
        name: p.name || names?.[i] || `arg${i}`,
        typeId: p.type,
        isPointer: t.kind === "PTR",
      };
      if (t.kind === "PTR") {
        const pointee = btf.type(btf.resolve(t.type));
        if (pointee.kind === "STRUCT" || pointee.kind === "UNION" || pointee.kind === "FWD") {
          param.structName = pointee.name;
        }
      }
      return param;
    }),
  };
}

/** Argument names from `__traceiter_<name>` / `__bpf_trace_<name>`, if their types match. */
function namesFromKernelFunction(
  btf: Btf,
  name: string,
  argTypes: number[],
): string[] | undefined {
  for (const prefix of ["__traceiter_", "__bpf_trace_"]) {
    const id = btf.findIdByPrefix(prefix + name, "FUNC", prefix);
    if (id === undefined) continue;
    const protoId = btf.funcProtoOf(id);
    const proto = protoId === undefined ? undefined : btf.type(protoId);
    if (proto?.kind !== "FUNC_PROTO") continue;
    const params = proto.params.slice(1);
    if (
      params.length === argTypes.length &&
      params.every((p, i) => btf.resolve(p.type) === btf.resolve(argTypes[i]))
    ) {
      return params.map((p) => p.name);
    }
  }
  return undefined;
}
