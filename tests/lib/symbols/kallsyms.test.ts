/**
 * lib/symbols/kallsyms: parsing, address -> symbol (nearest lower for
 * functions, exact for data), name -> address, hidden addresses; then the
 * running kernel's /proc/kallsyms, checked against lines read independently.
 */
import {
  deepEqual as assertDeepEqual,
  equal as assertEquals,
  ok as assert,
} from "node:assert/strict";
import {
  Kallsyms,
  KallsymsHiddenError,
  kernelSymbols,
  loadKallsyms,
} from "../../../lib/symbols/kallsyms.ts";
import { kernelTest } from "../../support/kernel.ts";
import { runOk } from "../../support/process.ts";

const encode = (text: string) => new TextEncoder().encode(text);

const SAMPLE = [
  "ffffffff81000000 T _stext",
  "ffffffff81000000 T _text",
  "ffffffff81000100 t __pfx_vmstat_update",
  "ffffffff81000110 t vmstat_update",
  "ffffffff81000200 T wb_workfn",
  "ffffffff81000300 W abort",
  "ffffffff82000000 D jiffies",
  "ffffffff82000040 d some_table",
  "ffffffffc0001000 t ext4_end_io_rsv_work\t[ext4]",
  "ffffffffc0000000 t loop_workfn\t[loop]",
  "ffffffffc0000080 t loop_rootcg_workfn\t[loop]",
  "ffffffffc0002000 t bpf_prog_6deef7357e7b4530_sd_fw_ingress\t[bpf]",
  "",
].join("\n");

Deno.test("kallsyms: nearest lower text symbol, with offset", () => {
  const k = Kallsyms.parse(encode(SAMPLE));
  assertEquals(k.size, 12);
  assertDeepEqual(k.resolve(0xffffffff81000110n), {
    name: "vmstat_update",
    address: 0xffffffff81000110n,
    type: "t",
    offset: 0,
  });
  assertEquals(k.resolve(0xffffffff8100011an)?.offset, 10);
  assertEquals(k.nameOf(0xffffffff8100011an), "vmstat_update");
  assertEquals(k.nameOf(0xffffffff8100011an, { showOffset: true }), "vmstat_update+0xa");
  assertEquals(k.nameOf(0xffffffff810001ffn), "vmstat_update");
  assertEquals(k.nameOf(0xffffffff81000200n), "wb_workfn");
  // a weak function is text too
  assertEquals(k.nameOf(0xffffffff81000321n), "abort");
});

Deno.test("kallsyms: aliases at one address resolve to the first listed", () => {
  const k = Kallsyms.parse(encode(SAMPLE));
  assertEquals(k.nameOf(0xffffffff81000000n), "_stext");
  assertEquals(k.nameOf(0xffffffff81000050n), "_stext");
});

Deno.test("kallsyms: data symbols match only exactly; unknown addresses print in hex", () => {
  const k = Kallsyms.parse(encode(SAMPLE));
  assertEquals(k.resolve(0xffffffff82000000n)?.name, "jiffies");
  assertEquals(k.resolve(0xffffffff82000008n), undefined);
  assertEquals(k.nameOf(0xffffffff82000008n), "0xffffffff82000008");
  assertEquals(k.resolve(0xffffffff80000000n), undefined, "below the first symbol");
  assertEquals(k.resolve(0n), undefined);
  assertEquals(k.resolve(-1n), undefined);
  assertEquals(k.resolve(1n << 64n), undefined);
});

Deno.test("kallsyms: unsorted module lines are sorted, and keep their module", () => {
  const k = Kallsyms.parse(encode(SAMPLE));
  assertDeepEqual(k.resolve(0xffffffffc0000084n), {
    name: "loop_rootcg_workfn",
    address: 0xffffffffc0000080n,
    type: "t",
    module: "loop",
    offset: 4,
  });
  assertEquals(k.resolve(0xffffffffc0000010n)?.name, "loop_workfn");
  assertEquals(k.resolve(0xffffffffc0001000n)?.module, "ext4");
  assertEquals(k.resolve(0xffffffffc0002010n)?.module, "bpf");
  assertEquals(k.resolve(0xffffffff81000110n)?.module, undefined);
});

Deno.test("kallsyms: name -> address, by module, and every symbol of a name", () => {
  const text = SAMPLE + "ffffffffc0003000 t vmstat_update\t[dup]\n";
  const k = Kallsyms.parse(encode(text));
  assertEquals(k.addressOf("wb_workfn"), 0xffffffff81000200n);
  assertEquals(k.addressOf("loop_workfn"), 0xffffffffc0000000n);
  assertEquals(k.addressOf("no_such_symbol"), undefined);
  assertEquals(k.addressOf("vmstat_update"), 0xffffffff81000110n, "the first listed");
  assertEquals(k.addressOf("vmstat_update", "dup"), 0xffffffffc0003000n);
  assertEquals(k.addressOf("vmstat_update", ""), 0xffffffff81000110n);
  assertEquals(k.addressOf("loop_workfn", "ext4"), undefined);
  assertDeepEqual(k.symbolsNamed("vmstat_update").map((s) => s.address), [
    0xffffffff81000110n,
    0xffffffffc0003000n,
  ]);
});

Deno.test("kallsyms: malformed lines are skipped; no trailing newline is fine", () => {
  const k = Kallsyms.parse(encode("garbage\n\nffffffff81000000 T a\nzz T b\nffffffff81000010 t c"));
  assertEquals(k.size, 2);
  assertEquals(k.nameOf(0xffffffff81000011n), "c");
});

Deno.test("kallsyms: 32-bit addresses", () => {
  const k = Kallsyms.parse(encode("c1000000 T _text\nc1000100 T start_kernel\n"));
  assertEquals(k.nameOf(0xc1000104n), "start_kernel");
  assertEquals(k.addressOf("start_kernel"), 0xc1000100n);
});

Deno.test("kallsyms: all-zero addresses (kptr_restrict) are a clear error", () => {
  const hidden = "0000000000000000 T _stext\n0000000000000000 t vmstat_update\n";
  try {
    Kallsyms.parse(encode(hidden), "/proc/kallsyms", "1");
    assert(false, "expected KallsymsHiddenError");
  } catch (e) {
    assert(e instanceof KallsymsHiddenError, String(e));
    assert(/hidden.*\/proc\/kallsyms shows only zeros \(kernel.kptr_restrict=1\)/.test(e.message));
    assert(!e.message.includes("\n"), "one line");
  }
  assertEquals(Kallsyms.parse(encode("")).size, 0, "an empty file is not 'hidden'");
});

kernelTest("kallsyms: the running kernel, against /proc/kallsyms lines", () => {
  // CPU time of this thread (schedstat), not wall time: a busy machine must not fail it.
  const onCpuNs = () => Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]);
  const t0 = onCpuNs();
  const k = loadKallsyms();
  const loadMs = (onCpuNs() - t0) / 1e6;
  const lines = Deno.readTextFileSync("/proc/kallsyms").split("\n").filter(Boolean);
  assert(Math.abs(k.size - lines.length) < 100, `${k.size} symbols vs ${lines.length} lines`);
  assert(loadMs < 500, `read and parsed in ${loadMs.toFixed(0)} ms of CPU`);
  for (const name of ["vmstat_update", "wb_workfn", "flush_to_ldisc", "schedule"]) {
    const line = lines.find((l) => l.split(/\s+/)[2] === name);
    assert(line, `${name} in /proc/kallsyms`);
    const address = BigInt(`0x${line.split(" ")[0]}`);
    assertEquals(k.addressOf(name), address, name);
    assertEquals(k.nameOf(address), name);
    assertEquals(k.nameOf(address + 3n, { showOffset: true }), `${name}+0x3`);
  }
  assert(kernelSymbols() === kernelSymbols(), "parsed once, then cached");
});

kernelTest("kallsyms: what an unprivileged reader sees is reported as hidden", async () => {
  // The kernel shows addresses to a reader without CAP_SYSLOG only when
  // kptr_restrict is 0 and perf_event_paranoid <= 1 (kallsyms_show_value).
  const restrict = Deno.readTextFileSync("/proc/sys/kernel/kptr_restrict").trim();
  const paranoid = Number(Deno.readTextFileSync("/proc/sys/kernel/perf_event_paranoid"));
  const text = await runOk("setpriv", [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "head",
    "-5",
    "/proc/kallsyms",
  ]);
  const bytes = new TextEncoder().encode(text);
  if (restrict === "0" && paranoid <= 1) {
    assert(/^[0-9a-f]*[1-9a-f]/.test(text), "addresses are visible to everyone");
    assertEquals(Kallsyms.parse(bytes).size, 5);
    return;
  }
  assert(/^0+ /.test(text), text);
  try {
    Kallsyms.parse(bytes, "/proc/kallsyms", restrict);
    assert(false, "expected KallsymsHiddenError");
  } catch (e) {
    assert(e instanceof KallsymsHiddenError, String(e));
  }
});
