/**
 * --prometheus against a real Prometheus (Debian's prometheus and promtool),
 * started by the test in a temporary directory, scraping the tool every
 * second on 127.0.0.1.
 *
 * biolatency -d LOOP sees only the workload's requests (400 O_DIRECT 4 KiB
 * writes on a loop device made by the test, one request each), so:
 * - PromQL increase() of bpftk_biolatency_seconds_count over a window that
 *   starts before a scrape that saw 0 and ends at a scrape after the
 *   workload is exactly 400 (no extrapolation: the first sample is 0, the
 *   window ends on a sample), and equals the total of the text histogram
 *   printed by a plain `biolatency -d LOOP` running through the same window;
 * - histogram_quantile(0.5, ...) falls within the text histogram's median
 *   bucket;
 * - increase(_sum) lies between the sums of the buckets' lower and upper
 *   bounds (the sum is real: the BPF side adds each latency in ns);
 * - bitesize -d LOOP --prometheus, scraped by the same Prometheus: the
 *   window's increase of bpftk_bitesize_bytes_count is 400 and of _sum
 *   400 x 4096 bytes, all in the le="8192" bucket (4 KiB is slot 2: 4-7 KiB);
 * - `promtool check metrics` passes on the exposition; OpenMetrics is served
 *   when asked for.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, waitFor } from "../support/kernel.ts";
import { parseLog2Hists, total } from "../support/log2_hist_parse.ts";
import { run } from "../support/process.ts";
import { freePort, PrometheusServer } from "../support/prometheus_server.ts";
import { LoopDevice, runBlockWorkload } from "../support/block_io_workload.ts";
import { REPO_ROOT, ToolProcess } from "../support/tool_process.ts";
import { Spawned } from "../support/process.ts";

const WRITES = 400;
const SERVING = /serving Prometheus metrics .*on (http:\/\/\S+)/;
const COUNT = "bpftk_biolatency_seconds_count";
const SIZES = 'bpftk_bitesize_bytes_count{comm="bioworkload"}';

async function scrape(url: string, accept?: string): Promise<{ type: string; body: string }> {
  const res = await fetch(url, {
    headers: accept ? { accept } : {},
    signal: AbortSignal.timeout(5000),
  });
  assertEquals(res.status, 200);
  return { type: res.headers.get("content-type") ?? "", body: await res.text() };
}

async function promtoolCheck(exposition: string): Promise<void> {
  const out = await run("promtool", ["check", "metrics"], {
    input: exposition,
    deadlineMs: 20_000,
  });
  assertEquals(out.code, 0, `promtool check metrics: ${out.stdout}${out.stderr}`);
}

/** The time of the newest sample of `metric` Prometheus holds (seconds), or 0 (none, or not up yet). */
async function lastScrape(prom: PrometheusServer, metric = COUNT): Promise<number> {
  const r = await prom.query(`timestamp(${metric})`).catch(() => []);
  return r.length ? r[0].value : 0;
}

kernelTest(
  "biolatency --prometheus: Prometheus' increase = the text total (400), median in the text's median bucket, real _sum, promtool passes",
  async () => {
    const loop = await LoopDevice.create(32);
    const port = freePort();
    const tools: Spawned[] = [];
    try {
      const d = ["-d", loop.name];
      const exporter = new ToolProcess("biolatency", [...d, "--prometheus", `127.0.0.1:${port}`], {
        deadlineMs: 80_000,
      });
      const text = new ToolProcess("biolatency", d, { deadlineMs: 80_000 });
      const sizePort = freePort();
      const sizes = new ToolProcess("bitesize", [...d, "--prometheus", `127.0.0.1:${sizePort}`], {
        deadlineMs: 80_000,
      });
      tools.push(exporter, text, sizes);
      await exporter.waitForOutput(SERVING);
      await sizes.waitForOutput(SERVING);
      await text.waitForOutput(/Tracing block device I\/O/);
      const url = exporter.stdout.match(SERVING)![1];
      assertEquals(url, `http://127.0.0.1:${port}/metrics`);

      await using prom = await PrometheusServer.start(
        [`127.0.0.1:${port}`, `127.0.0.1:${sizePort}`],
        80_000,
      );
      tools.push(prom.process);
      // Wait for a scrape that began after now: it saw no I/O yet (count 0).
      const t0 = Date.now() / 1000;
      await waitFor(async () => (await lastScrape(prom)) > t0, 30_000, "a first scrape");
      assertEquals(await prom.value(COUNT), 0);

      await runBlockWorkload(loop, [{ op: "write", bytes: 4096, count: WRITES }]);
      const done = Date.now() / 1000;
      await waitFor(async () => (await lastScrape(prom)) > done, 10_000, "a scrape after the I/O");
      await waitFor(async () => (await lastScrape(prom, SIZES)) > done, 10_000, "bitesize scraped");
      const t1 = await lastScrape(prom); // the window ends on that sample
      const window = `${Math.ceil((t1 - t0) * 1000)}ms`;

      const { code, stdout, stderr } = await text.stop();
      assertEquals(code, 0, stderr);
      const [hist] = parseLog2Hists(stdout);
      assertEquals(total(hist), WRITES, stdout);

      const increase = await prom.value(`increase(${COUNT}[${window}])`, t1);
      console.log(`increase(${COUNT}[${window}]) = ${increase}; text total ${total(hist)}`);
      assert(Math.abs(increase - WRITES) < 1e-6, `increase ${increase}, text ${WRITES}`);

      const median = await prom.value(
        `histogram_quantile(0.5, increase(bpftk_biolatency_seconds_bucket[${window}]))`,
        t1,
      );
      let cumulative = 0;
      const slot = hist.counts.findIndex((n) => (cumulative += n) >= WRITES / 2);
      const [low, high] = [slot === 0 ? 0 : 2 ** slot, 2 ** (slot + 1)];
      console.log(
        `histogram_quantile(0.5) = ${median * 1e6} us; text median bucket [${low}, ${high}) us`,
      );
      assert(median * 1e6 >= low && median * 1e6 <= high, `median ${median * 1e6} us`);

      // _sum: between the sums of the bucket bounds the exporter itself served
      const buckets = (await prom.query(`increase(bpftk_biolatency_seconds_bucket[${window}])`, t1))
        .map((s) => ({ le: s.metric.le === "+Inf" ? Infinity : Number(s.metric.le), n: s.value }))
        .sort((a, b) => a.le - b.le);
      let below = 0, above = 0, prevLe = 0, prevN = 0;
      for (const b of buckets) {
        const n = Math.round(b.n - prevN);
        if (n > 0) {
          below += n * prevLe;
          above += n * b.le;
        }
        [prevLe, prevN] = [b.le, b.n];
      }
      const sum = await prom.value(`increase(bpftk_biolatency_seconds_sum[${window}])`, t1);
      console.log(`increase(_sum) = ${sum} s (buckets allow ${below} .. ${above})`);
      assert(sum >= below && sum <= above && sum > 0, `sum ${sum} outside [${below}, ${above}]`);

      // bitesize: a series per comm is born with the process's first request, so
      // increase() would start from its first sample; its values since the tool
      // started (before the workload) are the window's
      // A scrape stamped just after the workload may still predate its last requests'
      // counts: wait (bounded) until one has all of them, else fail on the value below.
      await waitFor(
        async () => ((await prom.query(SIZES).catch(() => []))[0]?.value ?? 0) >= WRITES,
        10_000,
        "bitesize's count to reach the workload's writes",
      ).catch(() => {});
      const t2 = await lastScrape(prom, SIZES);
      const sizesAt = async (m: string, le?: string) =>
        await prom.value(
          `bpftk_bitesize_bytes_${m}{comm="bioworkload"${le ? `,le="${le}"` : ""}}`,
          t2,
        );
      const sizeCount = await sizesAt("count");
      const sizeSum = await sizesAt("sum");
      const in8k = await sizesAt("bucket", "8192");
      const in4k = await sizesAt("bucket", "4096");
      console.log(
        `bitesize: count ${sizeCount}, sum ${sizeSum} bytes, le=4096 ${in4k}, le=8192 ${in8k}`,
      );
      assertEquals(sizeCount, WRITES);
      assertEquals(sizeSum, WRITES * 4096);
      assertEquals(in4k, 0);
      assertEquals(in8k, WRITES);
      assertEquals((await sizes.stop()).code, 0);

      const plain = await scrape(url);
      assert(plain.type.startsWith("text/plain; version=0.0.4"), plain.type);
      await promtoolCheck(plain.body);
      const om = await scrape(url, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
      assert(om.type.startsWith("application/openmetrics-text"), om.type);
      assert(om.body.includes("# UNIT bpftk_biolatency_seconds seconds"), om.body);
      assert(om.body.endsWith("# EOF\n"), om.body.slice(-200));

      const stopped = await exporter.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    } finally {
      for (const t of tools) t.killTree();
      await loop.remove();
    }
  },
  { commands: ["prometheus", "promtool", "losetup", "python3"], limitMs: 120_000 },
);

kernelTest(
  "bpftk exporter runqlat 'biolatency -D' vfsstat: one endpoint, three families, promtool passes",
  async () => {
    const port = freePort();
    const p = new Spawned("deno", [
      "run",
      "-A",
      `${REPO_ROOT}bpftk.ts`,
      "exporter",
      "runqlat",
      "biolatency -D",
      "vfsstat",
      "--listen",
      `127.0.0.1:${port}`,
    ], { deadlineMs: 40_000 });
    try {
      await p.waitForOutput(SERVING, 20_000);
      const { body } = await scrape(`http://127.0.0.1:${port}/metrics`);
      for (
        const line of [
          "# TYPE bpftk_runqlat_seconds histogram",
          "# TYPE bpftk_biolatency_seconds histogram",
          "# TYPE bpftk_vfsstat_calls_total counter",
        ]
      ) assert(body.includes(line), `${line} missing:\n${body}`);
      assert(/^bpftk_runqlat_seconds_sum \d/m.test(body), "runqlat has a real _sum");
      assert(/^bpftk_vfsstat_calls_total\{op="read"\} \d+$/m.test(body), body);
      await promtoolCheck(body);
      const { code, stderr } = await p.stop();
      assertEquals(code, 0, stderr);
    } finally {
      p.killTree();
    }
  },
  { commands: ["promtool"], limitMs: 60_000 },
);
