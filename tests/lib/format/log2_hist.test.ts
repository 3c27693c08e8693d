import { assertEquals, assertThrows } from "./assert.ts";
import { formatLinearHist, formatLog2Hist } from "../../../lib/format/log2_hist.ts";

const BAR_FULL = "*".repeat(40);
const BAR_EMPTY = " ".repeat(40);

Deno.test("formatLog2Hist: nothing is printed when every slot is empty", () => {
  assertEquals(formatLog2Hist([], "usecs"), "");
  assertEquals(formatLog2Hist([0, 0, 0], "usecs"), "");
  assertEquals(formatLog2Hist(new Uint32Array(26), "usecs"), "");
});

Deno.test("formatLog2Hist: leading empty slots are printed, trailing ones dropped", () => {
  const text = formatLog2Hist([0, 0, 5, 0, 0, 0], "usecs");
  assertEquals(
    text,
    "     usecs               : count    distribution\n" +
      "         0 -> 1          : 0        |                                        |\n" +
      "         2 -> 3          : 0        |                                        |\n" +
      "         4 -> 7          : 5        |****************************************|\n",
  );
});

Deno.test("formatLog2Hist: bar length is count*40/max, rounded down", () => {
  const text = formatLog2Hist([1, 40, 41, 20], "msecs");
  assertEquals(
    text,
    "     msecs               : count    distribution\n" +
      "         0 -> 1          : 1        |                                        |\n" +
      `         2 -> 3          : 40       |${"*".repeat(39)} |\n` +
      `         4 -> 7          : 41       |${BAR_FULL}|\n` +
      `         8 -> 15         : 20       |${"*".repeat(19)}${" ".repeat(21)}|\n`,
  );
});

Deno.test("formatLog2Hist: slot 32 still uses the narrow layout", () => {
  const counts = new Array(33).fill(0);
  counts[32] = 7;
  const lines = formatLog2Hist(counts, "nsecs").split("\n");
  assertEquals(lines.length, 35); // header + 33 rows + "" after the final \n
  assertEquals(lines[0], "     nsecs               : count    distribution");
  assertEquals(lines[1], `         0 -> 1          : 0        |${BAR_EMPTY}|`);
  assertEquals(lines[33], `4294967296 -> 8589934591 : 7        |${BAR_FULL}|`);
  assertEquals(lines[34], "");
});

Deno.test("formatLog2Hist: a count above slot 32 switches to the wide layout", () => {
  const counts = new Array(34).fill(0);
  counts[0] = 1;
  counts[33] = 2;
  const lines = formatLog2Hist(counts, "nsecs").split("\n");
  assertEquals(lines[0], "               nsecs                         : count    distribution");
  assertEquals(
    lines[1],
    "                   0 -> 1                    : 1        |**********          |",
  );
  assertEquals(
    lines[34],
    "          8589934592 -> 17179869183          : 2        |********************|",
  );
});

Deno.test("formatLog2Hist: slot 63 prints unsigned 64-bit bounds", () => {
  const counts = new Array(64).fill(0n);
  counts[63] = 1n;
  const lines = formatLog2Hist(counts, "x").split("\n");
  assertEquals(
    lines[64],
    " 9223372036854775808 -> 18446744073709551615 : 1        |********************|",
  );
  assertThrows(() => formatLog2Hist([...counts, 1n], "x"), RangeError);
});

Deno.test("formatLog2Hist: long unit names and wide counts are never truncated", () => {
  const text = formatLog2Hist([123456789], "a-very-long-unit-name");
  assertEquals(
    text,
    "     a-very-long-unit-name : count    distribution\n" +
      `         0 -> 1          : 123456789 |${BAR_FULL}|\n`,
  );
});

Deno.test("formatLog2Hist: accepts numbers, bigints and typed arrays alike", () => {
  const expected = formatLog2Hist([3, 1, 2], "usecs");
  assertEquals(formatLog2Hist([3n, 1n, 2n], "usecs"), expected);
  assertEquals(formatLog2Hist(Uint32Array.of(3, 1, 2, 0, 0), "usecs"), expected);
  assertEquals(formatLog2Hist(BigUint64Array.of(3n, 1n, 2n), "usecs"), expected);
});

Deno.test("formatLog2Hist: counts beyond 32 bits are printed exactly", () => {
  const big = 5_000_000_000n;
  const text = formatLog2Hist([big, big / 2n], "usecs");
  assertEquals(
    text,
    "     usecs               : count    distribution\n" +
      `         0 -> 1          : 5000000000 |${BAR_FULL}|\n` +
      `         2 -> 3          : 2500000000 |${"*".repeat(20)}${" ".repeat(20)}|\n`,
  );
});

Deno.test("formatLog2Hist: rejects counts a C unsigned could not hold", () => {
  assertThrows(() => formatLog2Hist([-1], "usecs"), RangeError);
  assertThrows(() => formatLog2Hist([1.5], "usecs"), RangeError);
  assertThrows(() => formatLog2Hist([NaN], "usecs"), RangeError);
  assertThrows(() => formatLog2Hist([-1n], "usecs"), RangeError);
});

Deno.test("formatLinearHist: only non-empty slots are printed", () => {
  assertEquals(formatLinearHist([0, 0], 0, 1, "runqlen"), "");
  assertEquals(
    formatLinearHist([0, 2, 0, 1, 0], 0, 1, "runqlen"),
    "     runqlen       : count     distribution\n" +
      `        1          : 2        |${BAR_FULL}|\n` +
      `        3          : 1        |${"*".repeat(20)}${" ".repeat(20)}|\n`,
  );
});

Deno.test("formatLinearHist: labels are base + index * step", () => {
  assertEquals(
    formatLinearHist([4, 0, 3], 100, 25, "msecs"),
    "     msecs         : count     distribution\n" +
      `        100        : 4        |${BAR_FULL}|\n` +
      `        150        : 3        |${"*".repeat(30)}${" ".repeat(10)}|\n`,
  );
  assertEquals(
    formatLinearHist([1], -5, 1, "a-long-value-type"),
    "     a-long-value-type : count     distribution\n" +
      `        -5         : 1        |${BAR_FULL}|\n`,
  );
});
