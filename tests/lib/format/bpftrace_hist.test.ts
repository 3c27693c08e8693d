import { assertEquals, assertThrows } from "./assert.ts";
import {
  compareKeyBytes,
  formatBpftraceHist,
  formatBpftraceHistMap,
  formatBpftraceLhist,
} from "../../../lib/format/bpftrace_hist.ts";

const FULL = "@".repeat(52);
const EMPTY = " ".repeat(52);

/** counts with `count` in bucket `index` and zeros elsewhere */
function oneBucket(index: number, count = 1, length = 65): number[] {
  const counts = new Array(length).fill(0);
  counts[index] = count;
  return counts;
}

Deno.test("formatBpftraceHist: empty histograms print no rows", () => {
  assertEquals(formatBpftraceHist([]), "");
  assertEquals(formatBpftraceHist(new Array(65).fill(0)), "");
});

Deno.test("formatBpftraceHist: rows from the first to the last non-empty bucket", () => {
  assertEquals(
    formatBpftraceHist([0, 0, 0, 0, 2, 0, 1, 0, 0]),
    `[4, 8)                 2 |${FULL}|\n` +
      `[8, 16)                0 |${EMPTY}|\n` +
      `[16, 32)               1 |${"@".repeat(26)}${" ".repeat(26)}|\n`,
  );
});

Deno.test("formatBpftraceHist: labels of the special and suffixed buckets", () => {
  const label = (index: number) => formatBpftraceHist(oneBucket(index)).slice(0, 16);
  assertEquals(label(0), "(..., 0)        ");
  assertEquals(label(1), "[0]             ");
  assertEquals(label(2), "[1]             ");
  assertEquals(label(3), "[2, 4)          ");
  assertEquals(label(11), "[512, 1K)       ");
  assertEquals(label(12), "[1K, 2K)        ");
  assertEquals(label(21), "[512K, 1M)      ");
  assertEquals(label(31), "[512M, 1G)      ");
  assertEquals(label(41), "[512G, 1T)      ");
  assertEquals(label(42), "[1T, 2T)        ");
  // Beyond T bpftrace keeps counting in T; a label longer than 16 columns pushes the row.
  assertEquals(
    formatBpftraceHist(oneBucket(64, 3)),
    `[4194304T, 8388608T)       3 |${FULL}|\n`,
  );
});

Deno.test("formatBpftraceHist: counts wider than 8 columns are not cut", () => {
  assertEquals(
    formatBpftraceHist([0, 123456789012n]),
    `[0]             123456789012 |${FULL}|\n`,
  );
});

Deno.test("formatBpftraceHist: bar is count/max*52 truncated", () => {
  const rows = formatBpftraceHist([0, 3, 2, 1]).split("\n");
  assertEquals(rows[0], `[0]                    3 |${FULL}|`);
  assertEquals(rows[1], `[1]                    2 |${"@".repeat(34)}${" ".repeat(18)}|`);
  assertEquals(rows[2], `[2, 4)                 1 |${"@".repeat(17)}${" ".repeat(35)}|`);
});

Deno.test("formatBpftraceLhist: below-min, K/M labels and the open last bucket", () => {
  assertEquals(
    formatBpftraceLhist([0, 3, 0, 1], 0, 2048, 1024),
    `[0, 1K)                3 |${FULL}|\n` +
      `[1K, 2K)               0 |${EMPTY}|\n` +
      `[2K, ...)              1 |${"@".repeat(17)}${" ".repeat(35)}|\n`,
  );
  assertEquals(
    formatBpftraceLhist([1, 0, 2, 0, 1], 10, 3082, 1024),
    `(..., 10)              1 |${"@".repeat(26)}${" ".repeat(26)}|\n` +
      `[10, 1034)             0 |${EMPTY}|\n` +
      `[1034, 2058)           2 |${FULL}|\n` +
      `[2058, 3082)           0 |${EMPTY}|\n` +
      `[3082, ...)            1 |${"@".repeat(26)}${" ".repeat(26)}|\n`,
  );
  assertEquals(
    formatBpftraceLhist([0, 1, 1, 0, 1], 0, 3145728, 1048576),
    `[0, 1M)                1 |${FULL}|\n` +
      `[1M, 2M)               1 |${FULL}|\n` +
      `[2M, 3M)               0 |${EMPTY}|\n` +
      `[3M, ...)              1 |${FULL}|\n`,
  );
});

Deno.test("formatBpftraceLhist: a range not divisible by step keeps bpftrace's labels", () => {
  // buckets = floor(105 / 10) = 10; the last closed bucket is [90, 100), then [105, ...)
  const counts = new Array(12).fill(0);
  counts[10] = 1;
  counts[11] = 1;
  assertEquals(
    formatBpftraceLhist(counts, 0, 105, 10),
    `[90, 100)              1 |${FULL}|\n[105, ...)             1 |${FULL}|\n`,
  );
  assertThrows(() => formatBpftraceLhist([1], 10, 10, 1), RangeError);
  assertThrows(() => formatBpftraceLhist([1], 0, 10, 0), RangeError);
});

Deno.test("formatBpftraceHistMap: header with trailing space, blank line after each key", () => {
  assertEquals(
    formatBpftraceHistMap("@", [{ counts: [0, 1] }], { kind: "hist" }),
    `@: \n[0]                    1 |${FULL}|\n\n`,
  );
  assertEquals(
    formatBpftraceHistMap("@lat", [
      { key: ["1", "x"], counts: [0, 0, 2] },
      { key: ["0", "y"], counts: [0, 1] },
    ], { kind: "hist" }),
    `@lat[0, y]: \n[0]                    1 |${FULL}|\n\n` +
      `@lat[1, x]: \n[1]                    2 |${FULL}|\n\n`,
  );
  assertEquals(formatBpftraceHistMap("@empty", [], { kind: "hist" }), "\n");
  // A key whose buckets are all zero still gets its header.
  assertEquals(
    formatBpftraceHistMap("@z", [{ key: "k", counts: [0, 0] }], { kind: "hist" }),
    "@z[k]: \n\n",
  );
});

Deno.test("formatBpftraceHistMap: keys are escaped", () => {
  assertEquals(
    formatBpftraceHistMap("@c", [{ key: "a\x1b[2Jb", counts: [0, 1] }], { kind: "hist" })
      .split("\n")[0],
    "@c[a\\x1b[2Jb]: ",
  );
});

Deno.test("formatBpftraceHistMap: ties keep key-byte order (as bpftrace's std::map)", () => {
  const le64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);
  const entries = [1, 2, 3, 256, 0].map((n) => ({
    key: String(n),
    keyBytes: le64(n),
    counts: [0, 1],
  }));
  const headers = formatBpftraceHistMap("@e", entries, { kind: "hist" })
    .split("\n").filter((line) => line.startsWith("@"));
  // Seen on bpftrace 0.17: 0, 256, 1, 2, 3 (little-endian bytes compared one by one).
  assertEquals(headers, ["@e[0]: ", "@e[256]: ", "@e[1]: ", "@e[2]: ", "@e[3]: "]);
});

Deno.test("formatBpftraceHistMap: lhist layout", () => {
  assertEquals(
    formatBpftraceHistMap("@l", [{ counts: [0, 5, 0, 0] }], {
      kind: "lhist",
      min: 0,
      max: 20,
      step: 10,
    }),
    `@l: \n[0, 10)                5 |${FULL}|\n\n`,
  );
});

Deno.test("compareKeyBytes: lexicographic, shorter prefix first", () => {
  assertEquals(compareKeyBytes(Uint8Array.of(1), Uint8Array.of(1)), 0);
  assertEquals(compareKeyBytes(Uint8Array.of(1), Uint8Array.of(1, 0)) < 0, true);
  assertEquals(compareKeyBytes(Uint8Array.of(2), Uint8Array.of(1, 9)) > 0, true);
});
