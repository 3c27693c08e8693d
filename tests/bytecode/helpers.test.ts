import { assertEquals } from "./assert.ts";
import assert from "node:assert/strict";
import {
  type HelperArg,
  helperById,
  helperByName,
  helperDisplayName,
  HELPERS,
} from "../../bytecode/helpers.ts";

const ARG_CLASSES: ReadonlySet<HelperArg> = new Set<HelperArg>([
  "anything",
  "const_map_ptr",
  "map_key",
  "map_value",
  "uninit_map_value",
  "mem",
  "mem_or_null",
  "uninit_mem",
  "const_size",
  "const_size_or_zero",
  "ctx",
  "btf_id",
  "stack",
  "func",
  "const_alloc_size_or_zero",
  "ptr_to_long",
  "ptr_to_int",
  "spin_lock",
  "sock",
  "percpu_btf_id",
  "timer",
  "kptr",
  "dynptr",
  "const_str",
]);

const SIZES = new Set<HelperArg>(["const_size", "const_size_or_zero", "const_alloc_size_or_zero"]);

Deno.test("helpers: ids are unique, contiguous 0..211 and match their index", () => {
  assertEquals(HELPERS.length, 212);
  HELPERS.forEach((p, i) => assertEquals(p.id, i));
  assertEquals(new Set(HELPERS.map((p) => p.name)).size, HELPERS.length);
});

Deno.test("helpers: well-known ids carry their uapi names", () => {
  const known: Record<number, string> = {
    1: "map_lookup_elem",
    2: "map_update_elem",
    3: "map_delete_elem",
    4: "probe_read",
    5: "ktime_get_ns",
    6: "trace_printk",
    8: "get_smp_processor_id",
    14: "get_current_pid_tgid",
    15: "get_current_uid_gid",
    16: "get_current_comm",
    25: "perf_event_output",
    27: "get_stackid",
    35: "get_current_task",
    80: "get_current_cgroup_id",
    113: "probe_read_kernel",
    115: "probe_read_kernel_str",
    125: "ktime_get_boot_ns",
    130: "ringbuf_output",
    131: "ringbuf_reserve",
    132: "ringbuf_submit",
    156: "task_storage_get",
    158: "get_current_task_btf",
    165: "snprintf",
    181: "loop",
    209: "user_ringbuf_drain",
    211: "cgrp_storage_delete",
  };
  for (const [id, name] of Object.entries(known)) {
    assertEquals(helperById(Number(id))?.name, name, `helper ${id}`);
  }
});

Deno.test("helpers: lookups by name accept the bpf_ prefix or not", () => {
  assertEquals(helperByName("map_lookup_elem")?.id, 1);
  assertEquals(helperByName("bpf_map_lookup_elem")?.id, 1);
  assertEquals(helperByName("bpf_get_current_pid_tgid")?.id, 14);
  assertEquals(helperByName("no_such_helper"), undefined);
  assertEquals(helperByName("unspec"), undefined);
  assertEquals(helperById(0), undefined);
  assertEquals(helperById(212), undefined);
  assertEquals(helperById(-1), undefined);
  assertEquals(helperDisplayName(helperById(25)!), "bpf_perf_event_output");
});

Deno.test("helpers: prototypes are well formed", () => {
  for (const p of HELPERS) {
    assert.ok(p.args.length <= 5, `${p.name}: at most 5 arguments`);
    for (const a of p.args) assert.ok(ARG_CLASSES.has(a), `${p.name}: unknown arg ${a}`);
    // A size argument always follows the memory it measures.
    p.args.forEach((a, i) => {
      if (SIZES.has(a) && a !== "const_alloc_size_or_zero") {
        assert.ok(
          ["mem", "mem_or_null", "uninit_mem"].includes(p.args[i - 1]),
          `${p.name}: size arg ${i} follows ${p.args[i - 1]}`,
        );
      }
    });
    if (p.id > 0) {
      assert.ok(p.signature.includes(`bpf_${p.name}(`), `${p.name}: signature`);
      // The C prototype has as many parameters as the proto (trace_printk is variadic).
      const params = p.signature.slice(p.signature.indexOf("(") + 1, -1);
      const count = params === "void" ? 0 : params.split(",").length;
      if (p.name !== "trace_printk") {
        assertEquals(count, p.args.length, `${p.name}: ${p.signature}`);
      }
    }
  }
});

Deno.test("helpers: the tracing helpers have the kernel's exact argument classes", () => {
  const expect: Record<string, [string, HelperArg[], boolean]> = {
    map_lookup_elem: ["map_value_or_null", ["const_map_ptr", "map_key"], false],
    map_update_elem: ["integer", ["const_map_ptr", "map_key", "map_value", "anything"], false],
    map_delete_elem: ["integer", ["const_map_ptr", "map_key"], false],
    probe_read: ["integer", ["uninit_mem", "const_size_or_zero", "anything"], true],
    probe_read_user: ["integer", ["uninit_mem", "const_size_or_zero", "anything"], true],
    probe_read_kernel_str: ["integer", ["uninit_mem", "const_size_or_zero", "anything"], true],
    ktime_get_ns: ["integer", [], false],
    get_current_comm: ["integer", ["uninit_mem", "const_size"], false],
    perf_event_output: [
      "integer",
      ["ctx", "const_map_ptr", "anything", "mem", "const_size_or_zero"],
      true,
    ],
    get_stackid: ["integer", ["ctx", "const_map_ptr", "anything"], true],
    ringbuf_output: ["integer", ["const_map_ptr", "mem", "const_size_or_zero", "anything"], false],
    ringbuf_reserve: [
      "alloc_mem_or_null",
      ["const_map_ptr", "const_alloc_size_or_zero", "anything"],
      false,
    ],
    ringbuf_submit: ["void", ["mem", "anything"], false],
    task_storage_get: [
      "map_value_or_null",
      ["const_map_ptr", "btf_id", "map_value", "anything"],
      false,
    ],
    get_current_task: ["integer", [], true],
    get_current_task_btf: ["btf_id", [], true],
    trace_printk: ["integer", ["mem", "const_size"], true],
    send_signal: ["integer", ["anything"], false],
    get_ns_current_pid_tgid: [
      "integer",
      ["anything", "anything", "uninit_mem", "const_size"],
      false,
    ],
    current_task_under_cgroup: ["integer", ["const_map_ptr", "anything"], false],
    get_func_ip: ["integer", ["ctx"], true],
    get_attach_cookie: ["integer", ["ctx"], false],
    loop: ["integer", ["anything", "func", "stack", "anything"], false],
    for_each_map_elem: ["integer", ["const_map_ptr", "func", "stack", "anything"], false],
    copy_from_user: ["integer", ["uninit_mem", "const_size_or_zero", "anything"], false],
    snprintf: [
      "integer",
      ["mem_or_null", "const_size_or_zero", "const_str", "mem_or_null", "const_size_or_zero"],
      true,
    ],
  };
  for (const [name, [ret, args, gpl]] of Object.entries(expect)) {
    const p = helperByName(name)!;
    assertEquals([p.ret, p.args, p.gplOnly], [ret, args, gpl], name);
  }
  assertEquals(helperByName("task_storage_get")!.nullableArgs, [1, 2]);
  assertEquals(helperByName("loop")!.nullableArgs, [2]);
  assertEquals(helperByName("ringbuf_submit")!.releasesArg, 0);
  assertEquals(helperByName("ringbuf_discard")!.releasesArg, 0);
  assertEquals(helperByName("map_lookup_elem")!.nullableArgs, undefined);
  assertEquals(helperByName("get_current_pid_tgid")!.availability, "base");
  assertEquals(helperByName("perf_event_output")!.availability, "tracing");
  assertEquals(helperByName("skb_store_bytes")!.availability, "net");
});
