/** Running totals of drained log2 histograms, their Prometheus form and the series cap. */
import { deepEqual as assertDeepEqual, equal as assertEquals } from "node:assert/strict";
import { baseUnit, log2FromHistSlots, Log2Totals } from "../../lib/export/log2_totals.ts";
import { formatExposition } from "../../lib/export/prometheus_text.ts";

const name = (u: { name: string }) => `bpftk_t_${u.name}`;

Deno.test("log2 totals: reads add up; le = 2^(i+1) units in seconds; the clamped last slot only in +Inf", () => {
  const t = new Log2Totals(name, "help");
  t.add("usecs", [{ slots: [1, 2, 0, 5], sum: 0.5 }]);
  t.add("usecs", [{ slots: [0, 1, 1, 1], sum: 0.25 }]);
  const f = t.family("usecs");
  assertEquals(f.name, "bpftk_t_seconds");
  assertDeepEqual(f.series, [{
    labels: {},
    buckets: [{ le: 0.000002, count: 1 }, { le: 0.000004, count: 4 }, {
      le: 0.000008,
      count: 5,
    }],
    count: 11,
    sum: 0.75,
  }]);
  assertEquals(
    formatExposition([f], "text"),
    [
      "# HELP bpftk_t_seconds help",
      "# TYPE bpftk_t_seconds histogram",
      'bpftk_t_seconds_bucket{le="0.000002"} 1',
      'bpftk_t_seconds_bucket{le="0.000004"} 4',
      'bpftk_t_seconds_bucket{le="0.000008"} 5',
      'bpftk_t_seconds_bucket{le="+Inf"} 11',
      "bpftk_t_seconds_sum 0.75",
      "bpftk_t_seconds_count 11",
      "",
    ].join("\n"),
  );
});

Deno.test("log2 totals: without sums there is no _sum, and HELP says so", () => {
  const t = new Log2Totals(name, "help");
  t.add("Kbytes", [{ labels: { comm: 'a"b' }, slots: [1, 0] }]);
  const text = formatExposition([t.family("Kbytes")], "openmetrics");
  assertEquals(/^bpftk_t_bytes_sum/m.test(text), false);
  assertEquals(text.includes("# HELP bpftk_t_bytes help (no _sum"), true);
  assertEquals(text.includes('bpftk_t_bytes_bucket{comm="a\\"b",le="2048"} 1'), true);
  assertEquals(text.includes("# UNIT bpftk_t_bytes bytes"), true);
  assertEquals(text.endsWith("# EOF\n"), true);
});

Deno.test("log2 totals: the first N label sets keep their series, later ones go to 'other' for good", () => {
  const t = new Log2Totals(name, "h", 2);
  const read = (pid: number) => ({ labels: { pid, comm: `c${pid}` }, slots: [1, 0], sum: 1 });
  t.add("usecs", [read(1), read(2), read(3)]);
  t.add("usecs", [read(4), read(1)]);
  const series = t.family("usecs").series.map((s) => [s.labels, s.count]);
  assertDeepEqual(series, [
    [{ pid: "1", comm: "c1" }, 2],
    [{ pid: "2", comm: "c2" }, 1],
    [{ pid: "other", comm: "other" }, 2],
  ]);
});

Deno.test("base units: usecs, msecs -> seconds, Kbytes -> bytes, others kept", () => {
  assertDeepEqual(baseUnit("usecs"), { name: "seconds", mul: 1, div: 1e6 });
  assertDeepEqual(baseUnit("msecs"), { name: "seconds", mul: 1, div: 1e3 });
  assertDeepEqual(baseUnit("Kbytes"), { name: "bytes", mul: 1024, div: 1 });
  assertDeepEqual(baseUnit("backlog"), { name: "backlog", mul: 1, div: 1 });
});

Deno.test("bpftrace hist() slots as log2 slots: 0 and 1 share slot 0, the rest keep their bounds", () => {
  // hist(): [unused, 0, 1, 2-3, 4-7] -> log2: [0-1, 2-3, 4-7]
  assertDeepEqual(log2FromHistSlots([0, 3, 4, 5, 6]), [7, 5, 6]);
});
