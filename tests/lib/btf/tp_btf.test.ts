import assert from "node:assert/strict";
import { Btf, tpBtfTarget } from "../../../lib/btf/mod.ts";

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
