import assert from "node:assert/strict";
import { Btf, tpBtfTarget } from "../../../lib/btf/mod.ts";
import { readWholeFile } from "../../../lib/btf/read_file.ts";

Deno.test("btf_trace_sched_switch: (preempt, prev, next, prev_state)", () => {
  const btf = Btf.vmlinux();
  const target = tpBtfTarget("sched_switch");
  assert.equal(target.typedefId, btf.findId("btf_trace_sched_switch", "TYPEDEF"));
  assert.deepEqual(target.params.map((p) => p.name), ["preempt", "prev", "next", "prev_state"]);
  const [preempt, prev, next, prevState] = target.params;
  assert.equal(btf.typeToString(preempt.typeId), "bool");
  assert.equal(preempt.isPointer, false);
  assert.equal(prev.isPointer, true);
  assert.equal(prev.structName, "task_struct");
  assert.equal(next.structName, "task_struct");
  assert.equal(prevState.isPointer, false);
  assert.equal(btf.sizeOf(prevState.typeId), 4);
});

Deno.test("tp_btf targets: sched_wakeup, block_rq_issue, category prefix", () => {
  const wakeup = tpBtfTarget("sched:sched_wakeup");
  assert.deepEqual(wakeup.params.map((p) => [p.name, p.structName]), [["p", "task_struct"]]);
  const issue = tpBtfTarget("block_rq_issue");
  assert.deepEqual(issue.params.map((p) => [p.name, p.structName]), [["rq", "request"]]);
});

Deno.test("tp_btf: unknown tracepoint is a one-line error", () => {
  assert.throws(() => tpBtfTarget("sched_foo"), {
    message:
      "BTF: no typedef btf_trace_sched_foo: 'sched_foo' is not a tracepoint of this kernel (or BTF lacks it)",
  });
});

Deno.test("vmlinux: findIdByPrefix finds every tracepoint typedef and function as findId", () => {
  // The first id of each name and kind, from one pass over all types.
  const bytes = readWholeFile("/sys/kernel/btf/vmlinux");
  const all = Btf.fromBytes(bytes);
  const first = new Map<string, number>();
  for (let id = 1; id <= all.typeCount; id++) {
    const kind = all.kindOf(id);
    if (kind !== "TYPEDEF" && kind !== "FUNC") continue;
    const key = `${kind}:${all.nameOf(id)}`;
    if (!first.has(key)) first.set(key, id);
  }
  const families = [["TYPEDEF", "btf_trace_"], ["FUNC", "__traceiter_"], ["FUNC", "__bpf_trace_"]];
  const btf = Btf.fromBytes(bytes);
  let checked = 0;
  for (const [kind, prefix] of families) {
    const names = [...first.keys()].filter((k) => k.startsWith(`${kind}:${prefix}`))
      .map((k) => k.slice(kind.length + 1));
    // Look-ups out of id order, and names that are absent.
    names.sort((a, b) => (a.length % 7) - (b.length % 7) || a.localeCompare(b));
    names.push(`${prefix}no_such_tracepoint`);
    for (const name of names) {
      const got = btf.findIdByPrefix(name, kind as "FUNC" | "TYPEDEF", prefix);
      assert.equal(got, first.get(`${kind}:${name}`), `${kind} ${name}`);
      checked++;
    }
  }
  assert.ok(checked > 1000, `${checked} names checked`);
});

Deno.test("tp_btf: answers are remembered, and each caller gets its own copy", () => {
  const a = tpBtfTarget("sched_switch");
  a.params[1].name = "edited";
  a.params.pop();
  const b = tpBtfTarget("sched_switch");
  assert.deepEqual(b.params.map((p) => p.name), ["preempt", "prev", "next", "prev_state"]);
  assert.equal(b.typedefId, a.typedefId);
});
