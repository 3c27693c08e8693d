/**
 * The event path in the real kernel: a program on syscalls:sys_enter_getppid
 * (filtered to this thread) sends one record per getppid() call through a
 * ring buffer or perf buffers; the readers must deliver every record, in
 * order, and when the buffer is too small, delivered + lost must equal what
 * was sent, exactly. Waiting never blocks the event loop.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { loadAndAttach, type Session } from "../../../lib/cli/session.ts";
import {
  defineEvents,
  type EventBufferKind,
  type EventsDef,
  output,
  reserve,
  submit,
} from "../../../lib/dsl/events.ts";
import { defineMap } from "../../../lib/dsl/maps.ts";
import { tracepoint } from "../../../lib/dsl/program.ts";
import { r0, r1, r10, r7, r8, r9 } from "../../../lib/dsl/registers.ts";
import { char, defineSchema } from "../../../lib/dsl/schema.ts";
import {
  LostCounter,
  openEventReader,
  type PerfBufferReader,
  type RingBufferReader,
} from "../../../lib/kernel/ringbuf.ts";
import { ringbufSupported } from "../../../lib/kernel/features.ts";
import { kernelTest } from "../../support/kernel.ts";

const seqMap = defineMap({ name: "seq", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
const record = defineSchema("test_record", { seq: "u64", pid: "u32", tid: "u32", comm: char(16) });

const libc = Deno.dlopen("libc.so.6", {
  getppid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
});
/** This thread: Deno's own threads call getppid() too, so the program watches only this one. */
const TID = libc.symbols.gettid();
const PID_TGID = (BigInt(Deno.pid) << 32n) | BigInt(TID);
const COMM = Deno.readTextFileSync(`/proc/self/task/${TID}/comm`).trim();

/** Makes `n` getppid() calls, each one event. */
function trigger(n: number): void {
  for (let i = 0; i < n; i++) libc.symbols.getppid();
}

/**
 * The test program: for getppid() calls by this process, a record with a
 * sequence number (a per-program counter), pid, tid and comm. `via`: reserve
 * and submit, or build on the stack and output().
 */
function load(ch: EventsDef, via: "reserve" | "output"): Session {
  const p = tracepoint("syscalls", "sys_enter_getppid", { name: "rbtest_getppid" });
  const out = p.label();
  p.call("get_current_pid_tgid").mov(r9, r0).mov64(r1, PID_TGID).jumpIf(r9, "!=", r1, out);
  if (via === "reserve") reserve(p, ch, r7, out);
  else p.stackPtr(r7, p.stack(record.size));
  // seq: from a one-slot array, incremented atomically
  const key = p.stack(4);
  p.store("u32", r10, key, 0).lookup(seqMap, key);
  p.if(r0, "!=", 0, () => {
    p.mov(r1, 1).atomicAdd("u64", r0, 0, r1).load(r8, "u64", r0, 0);
  }, () => p.mov(r8, 0));
  record.store(p, r7, "seq", r8);
  p.mov(r1, r9).rsh(r1, 32);
  record.store(p, r7, "pid", r1);
  record.store(p, r7, "tid", r9);
  record.currentComm(p, r7, "comm");
  if (via === "reserve") submit(p, ch, r7);
  else output(p, ch, r7, record.size);
  p.bind(out).ret(0);
  return loadAndAttach([p.build()]);
}

function closeSession(s: Session): void {
  for (const l of s.links) l.close();
  for (const p of s.programs) p.close();
  for (const m of s.maps.values()) m.close();
}

function readAll(ch: EventsDef, s: Session, opts: { perfPages?: number } = {}) {
  return openEventReader(s.maps.get(ch.events)!, opts);
}

for (const kind of ["ringbuf", "perf"] as EventBufferKind[]) {
  for (const via of ["reserve", "output"] as const) {
    kernelTest(`${kind} via ${via}: every record arrives once, in order`, () => {
      const ch = defineEvents({ kind, recordSize: record.size, ringBytes: 1 << 20 });
      const s = load(ch, via);
      const reader = readAll(ch, s);
      try {
        assertEquals(reader.bufferKind, kind);
        const n = 2000;
        trigger(n);
        const seqs: bigint[] = [];
        while (
          reader.drain((data) => {
            const e = record.decode(data);
            assertEquals(e.pid, Deno.pid);
            assertEquals(e.tid, TID);
            assertEquals(e.comm, COMM);
            seqs.push(e.seq);
          }) > 0
        );
        assertEquals(seqs.length, n);
        // one CPU's records are in order; across CPUs (perf) sort them
        deepEqual([...seqs].sort((a, b) => Number(a - b)), seqs.map((_, i) => BigInt(i + 1)));
        if (kind === "ringbuf") deepEqual(seqs, seqs.map((_, i) => BigInt(i + 1)));
        deepEqual(new LostCounter(s.maps.get(ch.lost)!).poll(), []);
      } finally {
        reader.close();
        closeSession(s);
      }
    });
  }
}

kernelTest("ringbuf too small: delivered + lost == sent, exactly", () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: record.size, ringBytes: 4096 });
  const s = load(ch, "reserve");
  const reader = readAll(ch, s);
  try {
    const sent = 1000;
    trigger(sent); // nobody reads meanwhile: the buffer fills after ~80 records
    let delivered = 0;
    while (reader.drain(() => delivered++) > 0);
    const lost = new LostCounter(s.maps.get(ch.lost)!);
    const total = lost.poll().reduce((a, l) => a + l.lost, 0);
    console.log(`ringbuf 4 KiB: ${delivered} delivered, ${total} lost of ${sent}`);
    assert(delivered > 0 && total > 0, `delivered ${delivered}, lost ${total}`);
    assertEquals(delivered + total, sent);
    // The space is reusable after the drain.
    trigger(10);
    let again = 0;
    reader.drain(() => again++);
    assertEquals(again, 10);
  } finally {
    reader.close();
    closeSession(s);
  }
});

kernelTest("perf buffer too small: BPF lost count == kernel's LOST records", () => {
  const ch = defineEvents({ kind: "perf", recordSize: record.size });
  const s = load(ch, "reserve");
  const reader = readAll(ch, s, { perfPages: 1 }) as PerfBufferReader;
  try {
    const sent = 1000;
    trigger(sent);
    let delivered = 0;
    while (reader.drain(() => delivered++) > 0);
    const lost = new LostCounter(s.maps.get(ch.lost)!).poll().reduce((a, l) => a + l.lost, 0);
    console.log(`perf 1 page: ${delivered} delivered, ${lost} lost of ${sent}`);
    assert(lost > 0);
    assertEquals(delivered + lost, sent);
    // The LOST record comes with the next successful write: make one.
    trigger(1);
    reader.drain(() => delivered++);
    assertEquals(reader.kernelLost, lost);
  } finally {
    reader.close();
    closeSession(s);
  }
});

kernelTest("wait(): timers run while it waits; it returns soon after data", async () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: record.size, ringBytes: 1 << 16 });
  const s = load(ch, "reserve");
  const reader = readAll(ch, s) as RingBufferReader;
  try {
    // Nothing to read: a 300 ms wait must let a 20 ms timer fire first.
    let timerFired = 0;
    const t0 = performance.now();
    setTimeout(() => (timerFired = performance.now() - t0), 20);
    await reader.wait(300);
    const waited = performance.now() - t0;
    assert(timerFired > 0 && timerFired < waited, `timer at ${timerFired} ms, wait ${waited} ms`);
    assert(waited >= 250, `an empty wait lasts its timeout (${waited} ms)`);

    // Data arriving during a long wait wakes it up.
    const t1 = performance.now();
    setTimeout(() => trigger(1), 50);
    await reader.wait(3000);
    const woke = performance.now() - t1;
    assert(woke < 1000, `woke ${woke} ms after the wait began`);
    let n = 0;
    reader.drain(() => n++);
    assertEquals(n, 1);
  } finally {
    reader.close();
    closeSession(s);
  }
});

kernelTest("ring buffers are supported on this kernel (else tools use perf)", () => {
  assert(ringbufSupported());
});

kernelTest("closed readers read nothing and close twice harmlessly", () => {
  const ch = defineEvents({ kind: "ringbuf", recordSize: record.size, ringBytes: 1 << 16 });
  const s = load(ch, "reserve");
  const reader = readAll(ch, s);
  reader.close();
  reader.close();
  trigger(5);
  assertEquals(reader.drain(() => {}), 0);
  closeSession(s);
});
