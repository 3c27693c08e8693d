/** The running kernel's BTF: the layouts the tools depend on. */
import assert from "node:assert/strict";
import { Btf } from "../../../lib/btf/mod.ts";
import { mapFileReadOnly, readWholeFile } from "../../../lib/btf/read_file.ts";
import { runSync } from "../../support/process.ts";

/** Runs in a fresh Deno process, so the numbers include cold (not yet optimized) code. */
const COLD_TIMING_SCRIPT = `
const t0 = performance.now();
const { Btf, tpBtfTarget } = await import(${
  JSON.stringify(new URL("../../../lib/btf/mod.ts", import.meta.url).href)
});
const t1 = performance.now();
const btf = Btf.vmlinux();
const t2 = performance.now();
btf.field("task_struct", "pid");
btf.field("task_struct", "tgid");
btf.field("task_struct", "comm");
btf.field("nsproxy", "pid_ns_for_children");
tpBtfTarget("sched_switch", btf);
const t3 = performance.now();
console.log(JSON.stringify({ importMs: t1 - t0, openMs: t2 - t1, lookupsMs: t3 - t2 }));
`;

Deno.test("timing: vmlinux open + 5 lookups in a fresh process (printed, not asserted)", () => {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const out = runSync(Deno.execPath(), ["eval", COLD_TIMING_SCRIPT]);
    assert.ok(out.code === 0, out.stderr);
    runs.push(JSON.parse(out.stdout));
  }
  const f = (ms: number) => ms.toFixed(2);
  for (const r of runs) {
    console.log(
      `  import lib/btf ${f(r.importMs)} ms, Btf.vmlinux() ${f(r.openMs)} ms, ` +
        `4 fields + tpBtfTarget ${f(r.lookupsMs)} ms`,
    );
  }
});

Deno.test("mmap and read give the same bytes", () => {
  const mapped = mapFileReadOnly("/sys/kernel/btf/vmlinux");
  assert.ok(mapped, "vmlinux BTF can be mapped on this kernel (FFI granted by -A)");
  const read = readWholeFile("/sys/kernel/btf/vmlinux");
  assert.equal(mapped.length, read.length);
  assert.ok(mapped.every((b, i) => b === read[i]));
  assert.equal(mapFileReadOnly("/nonexistent"), undefined);
});

Deno.test("task_struct: pid, tgid, __state, comm", () => {
  const btf = Btf.vmlinux();
  const pid = btf.field("task_struct", "pid");
  const tgid = btf.field("task_struct", "tgid");
  assert.equal(pid.size, 4);
  assert.equal(pid.signed, true);
  assert.equal(pid.isPointer, false);
  assert.equal(btf.nameOf(pid.typeId), "pid_t");
  assert.equal(tgid.offset, pid.offset + 4);
  assert.equal(tgid.signed, true);

  const state = btf.field("task_struct", "__state");
  assert.equal(state.size, 4);
  assert.equal(state.signed, false);
  assert.equal(state.bitSize, undefined);

  const comm = btf.field("task_struct", "comm");
  assert.equal(comm.kind, "ARRAY");
  assert.equal(comm.size, 16);
  assert.equal(comm.arrayLength, 16);
  assert.equal(btf.typeToString(comm.typeId), "char[16]");
  assert.equal(btf.typeToString(comm.elementTypeId!), "char");
});

Deno.test("task_struct->nsproxy->pid_ns_for_children path pieces", () => {
  const btf = Btf.vmlinux();
  const ns = btf.field("task_struct", "nsproxy");
  assert.equal(ns.isPointer, true);
  assert.equal(ns.size, 8);
  assert.equal(ns.pointee, "nsproxy");
  assert.equal(btf.typeToString(ns.typeId), "struct nsproxy *");
  const pidNs = btf.field(ns.pointee!, "pid_ns_for_children");
  assert.equal(pidNs.isPointer, true);
  assert.equal(pidNs.pointee, "pid_namespace");
  const level = btf.field(pidNs.pointee!, "level");
  assert.equal(level.size, 4);
  assert.ok(level.offset > 0);
  assert.equal(btf.field("task_struct", "real_parent").pointee, "task_struct");
});

Deno.test("nested and anonymous members", () => {
  const btf = Btf.vmlinux();
  const se = btf.field("task_struct", "se");
  const vruntime = btf.field("task_struct", "se.vruntime");
  assert.equal(vruntime.offset, se.offset + btf.field("sched_entity", "vruntime").offset);
  assert.equal(vruntime.size, 8);
  // sock_common keeps the addresses and ports in anonymous unions of anonymous structs.
  assert.equal(btf.field("sock_common", "skc_daddr").offset, 0);
  assert.equal(btf.field("sock_common", "skc_rcv_saddr").offset, 4);
  assert.equal(btf.field("sock_common", "skc_dport").offset, 12);
  assert.equal(btf.field("sock_common", "skc_num").offset, 14);
  assert.equal(btf.field("sock", "__sk_common.skc_num").offset, 14);
  assert.equal(btf.field("struct sock", "__sk_common.skc_family").size, 2);
});

Deno.test("bitfields", () => {
  const btf = Btf.vmlinux();
  const reuse = btf.field("sock_common", "skc_reuse");
  assert.equal(reuse.bitSize, 4);
  assert.equal(reuse.size, 1);
  assert.equal(reuse.offset * 8 + reuse.bitOffset!, 152);
  const iowait = btf.field("task_struct", "in_iowait");
  assert.equal(iowait.bitSize, 1);
  assert.equal(iowait.size, 4);
  assert.equal(iowait.offset % 4, 0);
});

Deno.test("findId, resolve, sizeOf, typeToString", () => {
  const btf = Btf.vmlinux();
  const ts = btf.findId("task_struct", "STRUCT")!;
  assert.equal(btf.findId("task_struct"), ts);
  assert.equal(btf.kindOf(ts), "STRUCT");
  assert.equal(btf.findId("no_such_type_really"), undefined);
  assert.equal(btf.findId("void"), 0);
  const pidT = btf.findId("pid_t", "TYPEDEF")!;
  assert.equal(btf.type(btf.resolve(pidT)).name, "int");
  assert.equal(btf.sizeOf(pidT), 4);
  assert.equal(btf.sizeOf(btf.findId("u64")!), 8);
  assert.equal(btf.isSigned(pidT), true);
  const proto = btf.funcProtoOf(btf.findId("btf_trace_sched_switch")!)!;
  assert.equal(
    btf.typeToString(proto),
    "void ()(void *, bool, struct task_struct *, struct task_struct *, unsigned int)",
  );
  assert.deepEqual(
    btf.funcProtoParams("__traceiter_sched_switch").map((p) => p.name),
    ["__data", "preempt", "prev", "next", "prev_state"],
  );
});

Deno.test("errors name the struct and the field, on one line", () => {
  const btf = Btf.vmlinux();
  assert.throws(() => btf.field("task_struct", "foo"), {
    message: "BTF: struct task_struct has no field 'foo'",
  });
  assert.throws(() => btf.field("no_such_struct", "x"), {
    message: "BTF: no struct or union 'no_such_struct'",
  });
  assert.throws(() => btf.field("task_struct", "se.nope"), {
    message: "BTF: struct sched_entity has no field 'nope' (looking up task_struct.se.nope)",
  });
  assert.throws(() => btf.field("task_struct", "nsproxy.pid_ns_for_children"), {
    message: "BTF: task_struct.nsproxy is a pointer (struct nsproxy *); read it, then look up " +
      "'pid_ns_for_children' in struct nsproxy",
  });
  assert.throws(
    () => btf.field("task_struct", "nsproxy->pid_ns_for_children"),
    /through a pointer/,
  );
  assert.throws(() => btf.field("task_struct", "pid.x"), {
    message: "BTF: task_struct.pid is pid_t, not a struct; it has no field 'x'",
  });
  assert.throws(() => Btf.vmlinux("/nonexistent/vmlinux"), {
    message: "BTF: cannot read /nonexistent/vmlinux (kernel built without CONFIG_DEBUG_INFO_BTF?)",
  });
});

Deno.test("array indices in field paths", () => {
  const btf = Btf.vmlinux();
  const comm = btf.field("task_struct", "comm");
  const c3 = btf.field("task_struct", "comm[3]");
  assert.equal(c3.offset, comm.offset + 3);
  assert.equal(c3.size, 1);
  assert.equal(c3.kind, "INT");
  const rlim = btf.field("signal_struct", "rlim");
  const rlim7 = btf.field("signal_struct", "rlim[7].rlim_max");
  assert.equal(
    rlim7.offset,
    rlim.offset + 7 * btf.sizeOf(btf.findId("rlimit", "STRUCT")!) +
      btf.field("rlimit", "rlim_max").offset,
  );
  assert.throws(() => btf.field("task_struct", "comm[16]"), {
    message: "BTF: task_struct.comm is char[16]; index [16] is out of range",
  });
  assert.throws(() => btf.field("task_struct", "pid[1]"), /index \[1\] is not allowed/);
  assert.throws(() => btf.field("task_struct", "se..vruntime"), /bad component ''/);
});

Deno.test("enum values", () => {
  const btf = Btf.vmlinux();
  assert.equal(btf.enumValue("req_op", "REQ_OP_READ"), 0);
  assert.equal(btf.enumValue("req_op", "REQ_OP_WRITE"), 1);
  assert.throws(() => btf.enumValue("req_op", "REQ_OP_NOPE"), {
    message: "BTF: enum req_op has no enumerator 'REQ_OP_NOPE'",
  });
  assert.throws(() => btf.enumValue("no_such_enum", "X"), {
    message: "BTF: no enum 'no_such_enum'",
  });
});
