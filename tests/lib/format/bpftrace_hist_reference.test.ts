/**
 * Cross-check with bpftrace 0.17: run bpftrace programs, read every printed
 * hist()/lhist() map back into bucket counts, print them again with
 * formatBpftraceHistMap, and require the same bytes, key order included.
 */
import { assertEquals, assertOk } from "./assert.ts";
import {
  type BpftraceHistLayout,
  formatBpftraceHistMap,
} from "../../../lib/format/bpftrace_hist.ts";
import { parseBpftraceHists, type ParsedBpftraceHist } from "./hist_parse.ts";
import { capture, startSchedulerWorkload } from "./reference.ts";
import { kernelTest } from "../../support/kernel.ts";
import { Spawned } from "../../support/process.ts";

const BPFTRACE = "/usr/bin/bpftrace";

/** A printed bucket bound: "512", "1K", "3M"... */
function boundValue(text: string): number {
  const match = /^(-?\d+)([KMGT]?)$/.exec(text);
  if (!match) throw new Error(`not a bucket bound: ${text}`);
  const scale = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[match[2]]!;
  return Number(match[1]) * scale;
}

/** Bucket index of a printed row label, for the map's layout. */
function bucketIndex(label: string, layout: BpftraceHistLayout): number {
  if (layout.kind === "hist") {
    if (label === "(..., 0)") return 0;
    if (label === "[0]") return 1;
    if (label === "[1]") return 2;
    const low = boundValue(/^\[(\w+), \w+\)$/.exec(label)![1]);
    return 2 + Math.log2(low);
  }
  const buckets = Math.floor((layout.max - layout.min) / layout.step);
  if (label.startsWith("(..., ")) return 0;
  if (label.endsWith(", ...)")) return buckets + 1;
  const low = boundValue(/^\[(\w+), \w+\)$/.exec(label)![1]);
  return (low - layout.min) / layout.step + 1;
}

/** How one part of a key is stored: a 64-bit integer, or a NUL-padded char array of that size. */
type KeyPart = "int" | number;

/** The key's bytes as bpftrace stores them: 8 little-endian bytes per integer, padded strings. */
function keyBytes(printed: string, parts: readonly KeyPart[]): Uint8Array {
  const texts = parts.length === 1 ? [printed] : printed.split(", ");
  assertEquals(texts.length, parts.length, `key ${printed} does not have ${parts.length} parts`);
  const chunks = texts.map((text, i) => {
    const part = parts[i];
    if (part === "int") return new Uint8Array(BigInt64Array.of(BigInt(text)).buffer);
    const padded = new Uint8Array(part);
    padded.set(new TextEncoder().encode(text).subarray(0, part));
    return padded;
  });
  const bytes = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * Rebuilds bpftrace's exit output from the parsed histograms. Entries are
 * handed over in reverse, so the key order has to come from keyBytes and
 * the sort, not from the order bpftrace printed them in.
 */
function reprint(
  hists: ParsedBpftraceHist[],
  layouts: Record<string, BpftraceHistLayout>,
  keyParts: Record<string, readonly KeyPart[]>,
): string {
  const names = [...new Set(hists.map((hist) => hist.name))];
  return names.map((name) => {
    const layout = layouts[name];
    assertOk(layout, `no layout declared for ${name}`);
    const entries = hists.filter((hist) => hist.name === name).map((hist) => {
      const length = layout.kind === "hist"
        ? 66
        : Math.floor((layout.max - layout.min) / layout.step) + 2;
      const counts = new Array<bigint>(length).fill(0n);
      for (const row of hist.rows) counts[bucketIndex(row.label, layout)] = row.count;
      return {
        key: hist.key,
        keyBytes: hist.key === undefined ? undefined : keyBytes(hist.key, keyParts[name]),
        counts,
      };
    }).reverse();
    return formatBpftraceHistMap(name, entries, layout);
  }).join("");
}

async function crossCheck(
  program: string,
  layouts: Record<string, BpftraceHistLayout>,
  keyParts: Record<string, readonly KeyPart[]>,
): Promise<ParsedBpftraceHist[]> {
  const result = await capture(BPFTRACE, ["-e", program]);
  assertEquals(result.code, 0, `bpftrace failed:\n${result.stderr}`);
  const firstMap = result.stdout.search(/^@/m);
  assertOk(firstMap > 0, `bpftrace printed no maps:\n${result.stdout}\n${result.stderr}`);
  const preamble = result.stdout.slice(0, firstMap);
  assertOk(/^Attaching \d+ probes?\.\.\.\n\n+$/.test(preamble), `preamble: ${preamble}`);
  const hists = parseBpftraceHists(result.stdout);
  assertEquals(preamble + reprint(hists, layouts, keyParts), result.stdout);
  return hists;
}

kernelTest("formatBpftraceHistMap matches bpftrace on edge cases (BEGIN probe)", async () => {
  const program = `BEGIN {
    @h = hist(0); @h = hist(1); @h = hist(1); @h = hist(2); @h = hist(3); @h = hist(-1);
    @h = hist(1023); @h = hist(1024); @h = hist(1048576); @h = hist(1 << 30); @h = hist(3 << 30);
    @l = lhist(1, 10, 3082, 1024); @l = lhist(2048, 10, 3082, 1024); @l = lhist(5000, 10, 3082, 1024);
    @m = lhist(0, 0, 3145728, 1048576); @m = lhist(1048576, 0, 3145728, 1048576);
    @m = lhist(4000000, 0, 3145728, 1048576);
    @n = lhist(95, 0, 105, 10); @n = lhist(102, 0, 105, 10); @n = lhist(500, 0, 105, 10);
    @z = lhist(-1, 0, 10, 1);
    @e[1] = hist(5); @e[2] = hist(5); @e[3] = hist(5); @e[256] = hist(5); @e[0] = hist(5);
    @s["b"] = hist(5); @s["a"] = hist(5); @s["ab"] = hist(5); @s["c"] = hist(9); @s["c"] = hist(9);
    $i = 0;
    unroll(40) {
      @t[$i] = hist($i % 7);
      if ($i % 3 == 0) { @t[$i] = hist($i * 1000); }
      @u[$i % 25] = lhist($i, 0, 40, 8);
      $i++;
    }
    exit();
  }`;
  const hists = await crossCheck(program, {
    "@h": { kind: "hist" },
    "@l": { kind: "lhist", min: 10, max: 3082, step: 1024 },
    "@m": { kind: "lhist", min: 0, max: 3145728, step: 1048576 },
    "@n": { kind: "lhist", min: 0, max: 105, step: 10 },
    "@z": { kind: "lhist", min: 0, max: 10, step: 1 },
    "@e": { kind: "hist" },
    "@s": { kind: "hist" },
    "@t": { kind: "hist" },
    "@u": { kind: "lhist", min: 0, max: 40, step: 8 },
  }, { "@e": ["int"], "@s": [64], "@t": ["int"], "@u": ["int"] });
  // 40 keys with totals of 1 and 2: the order of equal totals is std::sort's.
  assertEquals(hists.filter((hist) => hist.name === "@t").length, 40);
}, { commands: [BPFTRACE] });

kernelTest("formatBpftraceHistMap matches bpftrace on live read() sizes", async () => {
  const stop = startSchedulerWorkload();
  const readers = new Spawned("/bin/sh", [
    "-c",
    "while :; do head -c 100 /etc/passwd; dd if=/dev/zero bs=7 count=3; cat /etc/hostname; " +
    "sleep 0.02; done >/dev/null 2>&1",
  ]);
  try {
    const program = `tracepoint:syscalls:sys_enter_read {
      @bytes = hist(args->count);
      @linear = lhist(args->count, 0, 10000, 1000);
      @by_comm[comm] = hist(args->count);
      @by_comm_linear[comm, pid % 2] = lhist(args->count, 0, 4096, 512);
    }
    interval:s:2 { exit(); }`;
    const hists = await crossCheck(program, {
      "@bytes": { kind: "hist" },
      "@linear": { kind: "lhist", min: 0, max: 10000, step: 1000 },
      "@by_comm": { kind: "hist" },
      "@by_comm_linear": { kind: "lhist", min: 0, max: 4096, step: 512 },
    }, { "@by_comm": [16], "@by_comm_linear": [16, "int"] });
    assertOk(hists.some((hist) => hist.name === "@bytes" && hist.rows.length > 0));
  } finally {
    readers.killTree();
    await readers.wait().catch(() => {});
    await stop();
  }
}, { commands: [BPFTRACE] });
