/**
 * Event channels: which maps each kind declares, and which helpers the
 * reserve/submit/output macros emit for a ring buffer and for perf buffers.
 */
import { deepEqual, equal as assertEquals, ok as assert, throws } from "node:assert/strict";
import { disassemble } from "../../../bytecode/disasm.ts";
import { defineEvents, output, reserve, submit } from "../../../lib/dsl/events.ts";
import { Probe } from "../../../lib/dsl/program.ts";
import { r7, r8 } from "../../../lib/dsl/registers.ts";

function probe(): Probe {
  const unused = () => {
    throw new Error("unused");
  };
  return new Probe(
    "t",
    "raw_tracepoint",
    { kind: "raw_tracepoint", name: "x" },
    { kind: "none" },
    { tracepoint: unused, structField: unused, tpBtf: unused },
  );
}

function calls(p: Probe): string[] {
  return disassemble(p.build().insns).filter((l) => l.includes("call")).map((l) =>
    l.replace(/^.*call /, "")
  );
}

Deno.test("defineEvents ringbuf: a ring buffer and a per-CPU lost counter", () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: 100, ringBytes: 1 << 16 });
  assertEquals(ch.events.type, "ringbuf");
  assertEquals(ch.events.maxEntries, 1 << 16);
  deepEqual([ch.lost.type, ch.lost.valueSize, ch.lost.maxEntries], ["percpu_array", 8, 1]);
  assertEquals(ch.heap, undefined);
});

Deno.test("defineEvents perf: perf_event_array and a per-CPU scratch record", () => {
  const ch = defineEvents({ kind: "perf", recordSize: 300, cpus: 8 });
  deepEqual([ch.events.type, ch.events.keySize, ch.events.valueSize, ch.events.maxEntries], [
    "perf_event_array",
    4,
    4,
    8,
  ]);
  deepEqual([ch.heap?.type, ch.heap?.valueSize], ["percpu_array", 300]);
});

Deno.test("defineEvents rejects sizes the kernel would", () => {
  throws(() => defineEvents({ kind: "ringbuf", recordSize: 8, ringBytes: 5000 }), /power of two/);
  throws(() => defineEvents({ kind: "ringbuf", recordSize: 4000, ringBytes: 4096 }), /fit/);
  throws(() => defineEvents({ kind: "perf", recordSize: 0 }), /positive integer/);
  throws(() => defineEvents({ kind: "perf", recordSize: 1 << 20 }), /too large/);
});

Deno.test("reserve/submit on a ring buffer: ringbuf_reserve, lost count on failure, submit", () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: 64 });
  const p = probe();
  const out = p.label();
  reserve(p, ch, r7, out);
  submit(p, ch, r7);
  p.bind(out).ret(0);
  deepEqual(calls(p), [
    "bpf_ringbuf_reserve#131",
    "bpf_map_lookup_elem#1", // the lost counter, on the failure path
    "bpf_ringbuf_submit#132",
  ]);
  const text = disassemble(p.build().insns).join("\n");
  assert(/r2 = 64/.test(text), "reserves the record size");
});

Deno.test("reserve/submit on perf buffers: scratch lookup, perf_event_output, lost on error", () => {
  const ch = defineEvents({ kind: "perf", recordSize: 64 });
  const p = probe();
  const out = p.label();
  reserve(p, ch, r7, out);
  submit(p, ch, r7);
  p.bind(out).ret(0);
  deepEqual(calls(p), [
    "bpf_map_lookup_elem#1", // the scratch record
    "bpf_map_lookup_elem#1", // lost, when there is none
    "bpf_perf_event_output#25",
    "bpf_map_lookup_elem#1", // lost, when the perf buffer is full
  ]);
  const text = disassemble(p.build().insns).join("\n");
  assert(/w3 = -1/.test(text), `BPF_F_CURRENT_CPU as a zero-extended 32-bit -1:\n${text}`);
  assert(/r1 = r6/.test(text), "perf_event_output gets the context");
});

Deno.test("output copies a record of a register size", () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: 64 });
  const p = probe();
  output(p, ch, r7, r8);
  p.ret(0);
  deepEqual(calls(p), ["bpf_ringbuf_output#130", "bpf_map_lookup_elem#1"]);
  assert(/r3 = r8/.test(disassemble(p.build().insns).join("\n")));
});
