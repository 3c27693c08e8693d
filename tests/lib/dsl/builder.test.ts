/** The DSL without a kernel: labels, control flow, maps, context fields, origins, errors. */
import { deepEqual, equal, match, throws } from "node:assert/strict";
import { disassemble } from "../../../bytecode/disasm.ts";
import { ProgramBuilder } from "../../../lib/dsl/builder.ts";
import type { Layouts } from "../../../lib/dsl/layouts.ts";
import { defineMap } from "../../../lib/dsl/maps.ts";
import { tracepoint } from "../../../lib/dsl/program.ts";
import { r0, r1, r10, r7 } from "../../../lib/dsl/registers.ts";
import { recordedFormatReader } from "../../../lib/tracefs/format.ts";

const WAKEUP_FORMAT = `name: sched_wakeup
ID: 374
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:int target_cpu;\toffset:32;\tsize:4;\tsigned:1;

print fmt: "comm=%s pid=%d", REC->comm, REC->pid
`;

const layouts: Layouts = {
  tracepoint: recordedFormatReader({ "sched:sched_wakeup": WAKEUP_FORMAT }),
  structField: () => {
    throw new Error("no BTF in this test");
  },
  tpBtf: () => {
    throw new Error("no BTF in this test");
  },
};

const text = (p: { build(): { insns: Parameters<typeof disassemble>[0] } }) =>
  disassemble(p.build().insns, { opcodes: false }).map((l) => l.trim());

Deno.test("tracepoint fields by name, with offsets from the format file", () => {
  const p = tracepoint("sched", "sched_wakeup", { layouts });
  p.ctx(r7, "pid").ctx(r1, "prio").ret(0);
  const built = p.build();
  equal(built.attach.kind, "tracepoint");
  equal(built.ctxSize, 36);
  deepEqual(text(p), [
    "0: r6 = r1",
    "1: r7 = *(u32 *)(r6 +24)",
    "2: r1 = *(u32 *)(r6 +28)",
    "3: r0 = 0",
    "4: exit",
  ]);
});

Deno.test("an unknown field names the tracepoint and the fields it has", () => {
  const p = tracepoint("sched", "sched_wakeup", { layouts });
  throws(() => p.ctx(r1, "nope"), /sched_wakeup has no field 'nope'.*pid/);
  throws(() => p.ctx(r1, "comm"), /16 bytes, not a scalar/);
});

Deno.test("labels resolve in slots, counting lddw as two", () => {
  const m = defineMap({ name: "m", type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 });
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  const end = p.label("end");
  p.jumpIf(r1, "==", 0, end).loadMap(r1, m).mov64(r7, 1n << 40n).bind(end).ret(0);
  deepEqual(text(p), [
    "0: if r1 == 0x0 goto pc+4",
    "1: r1 = map[fd:0]",
    "3: r7 = 0x10000000000",
    "5: r0 = 0",
    "6: exit",
  ]);
  deepEqual(p.build().mapRefs.map((r) => [r.index, r.map.name]), [[1, "m"]]);
});

Deno.test("if/else: the condition is negated to skip the then-branch", () => {
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  p.if(r1, ">", 5, () => p.mov(r0, 1), () => p.mov(r0, 2)).emit();
  p.if(r1, "&", 4, () => p.mov(r0, 3));
  deepEqual(text(p), [
    "0: if r1 <= 0x5 goto pc+2",
    "1: r0 = 1",
    "2: goto pc+1",
    "3: r0 = 2",
    "4: if r1 & 0x4 goto pc+1",
    "5: goto pc+1",
    "6: r0 = 3",
  ]);
});

Deno.test("mistakes fail where they are written", () => {
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  p.goto(p.label("nowhere"));
  throws(() => p.build(), /label nowhere is never bound/);
  throws(() => p.stack(600), /stack use 600 exceeds 512 bytes/);
  throws(() => p.call("no_such_helper"), /unknown BPF helper 'no_such_helper'/);
  throws(() => defineMap({ name: "a-b", type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 }));
});

Deno.test("every instruction remembers the tool line that emitted it", () => {
  const p = new ProgramBuilder("t", "tracepoint", { kind: "raw_tracepoint", name: "x" });
  p.store("u32", r10, -4, 0);
  const [insn] = p.build().insns;
  match(insn.origin ?? "", /^tests\/lib\/dsl\/builder\.test\.ts:\d+$/);
});
