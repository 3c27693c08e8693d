/**
 * Stack trace maps and bpf_get_stackid in the DSL, without a kernel: the map
 * declarations, the call's flags, the lost-stack counter, and our verifier's
 * verdict on a perf_event program that uses them.
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { disassemble } from "../../../bytecode/disasm.ts";
import { verifyProgram } from "../../../lib/verifier/built.ts";
import { Probe } from "../../../lib/dsl/program.ts";
import type { Layouts } from "../../../lib/dsl/layouts.ts";
import { r1, r7, r8 } from "../../../lib/dsl/registers.ts";
import {
  BPF_F_USER_STACK,
  defineStackErrorMap,
  defineStackMap,
  PERF_MAX_STACK_DEPTH,
  stackId,
} from "../../../lib/dsl/stacks.ts";

const noLayouts: Layouts = {
  tracepoint: () => {
    throw new Error("no tracefs here");
  },
  structField: () => {
    throw new Error("no BTF here");
  },
  tpBtf: () => {
    throw new Error("no BTF here");
  },
};

function sampler(): Probe {
  return new Probe(
    "prof",
    "perf_event",
    { kind: "perf_event", frequency: 49 },
    { kind: "none" },
    noLayouts,
    184,
  );
}

Deno.test("defineStackMap: stack_trace, u32 ids, 127 u64 frames, bcc's 16384 stacks", () => {
  const m = defineStackMap();
  deepEqual(
    { type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries },
    { type: "stack_trace", keySize: 4, valueSize: 8 * PERF_MAX_STACK_DEPTH, maxEntries: 16384 },
  );
  equal(defineStackMap({ storageSize: 1024, maxDepth: 20 }).valueSize, 160);
  const e = defineStackErrorMap();
  deepEqual([e.type, e.valueSize, e.maxEntries], ["percpu_array", 16, 1]);
});

Deno.test("stackId: get_stackid(ctx, map, flags) with the user-stack flag, the id in dst", () => {
  const stacks = defineStackMap({ name: "st" });
  const p = sampler();
  stackId(p, r7, stacks, { user: false });
  stackId(p, r8, stacks, { user: true, skip: 3 });
  const text = disassemble(p.ret(0).build().insns).join("\n");
  match(text, /r1 = r6\n.*r2 = map\[fd:0\]\n.*r3 = 0\n.*call bpf_get_stackid#27\n.*r7 = r0/);
  match(text, new RegExp(`r3 = ${BPF_F_USER_STACK | 3}\\n.*call bpf_get_stackid#27\\n.*r8 = r0`));
  throws(() => stackId(sampler(), r1, stacks, { user: true }), /does not survive helper calls/);
});

Deno.test("stackId with an error map: our verifier accepts the program", () => {
  const stacks = defineStackMap({ name: "st" });
  const errors = defineStackErrorMap();
  const p = sampler();
  stackId(p, r7, stacks, { user: false, errors });
  stackId(p, r8, stacks, { user: true, errors });
  const built = p.ret(0).build();
  deepEqual(built.maps.map((m) => m.name), ["st", "stack_errors"]);
  const result = verifyProgram(built);
  ok(result.ok, JSON.stringify(result.diagnostics));
});
