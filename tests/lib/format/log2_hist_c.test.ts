/**
 * formatLog2Hist / formatLinearHist against the C printers compiled into the
 * installed libbpf-tools, called directly (through gdb) on edge cases.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { formatLinearHist, formatLog2Hist } from "../../../lib/format/log2_hist.ts";
import { type PrinterCall, runCPrinters } from "./c_printers.ts";
import { kernelTest } from "../../support/kernel.ts";

const RUNQLAT = "/usr/sbin/runqlat";

function slots(length: number, set: Record<number, number>): number[] {
  const vals = new Array(length).fill(0);
  for (const [index, count] of Object.entries(set)) vals[Number(index)] = count;
  return vals;
}

/** Deterministic pseudo-random counts of varied magnitude. */
function randomHists(n: number, seed: number): number[][] {
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  return Array.from({ length: n }, () => {
    const length = 1 + (next() % 40);
    const magnitude = 10 ** (next() % 7);
    return Array.from({ length }, () => (next() % 3 === 0 ? 0 : next() % magnitude));
  });
}

/** Within these limits the C arithmetic does not overflow and the outputs must be identical. */
const SAME_AS_C: PrinterCall[] = [
  { fn: "log2", vals: new Array(26).fill(0), valType: "usecs" },
  { fn: "log2", vals: [], valType: "usecs" },
  { fn: "log2", vals: [0, 1, 0, 3, 0], valType: "usecs" },
  { fn: "log2", vals: [7], valType: "msecs" },
  { fn: "log2", vals: slots(40, { 32: 5 }), valType: "nsecs" },
  { fn: "log2", vals: slots(40, { 0: 1, 33: 2 }), valType: "nsecs" },
  { fn: "log2", vals: slots(64, { 3: 9, 40: 3, 62: 1 }), valType: "nsecs" },
  { fn: "log2", vals: [99999999, 100000000, 107374182, 1], valType: "usecs" },
  { fn: "log2", vals: [1, 2], valType: "a-very-long-unit-name-beyond-the-field" },
  { fn: "log2", vals: [1, 2], valType: "" },
  ...randomHists(40, 42).map((vals): PrinterCall => ({ fn: "log2", vals, valType: "usecs" })),
  { fn: "linear", vals: [0, 2, 0, 1, 0], base: 0, step: 1, valType: "runqlen" },
  { fn: "linear", vals: [4, 0, 3], base: 100, step: 25, valType: "msecs" },
  { fn: "linear", vals: [1, 1], base: -5, step: 1, valType: "a-long-value-type" },
  { fn: "linear", vals: [0, 0, 0], base: 0, step: 1, valType: "runqlen" },
  ...randomHists(20, 7).map((vals, i): PrinterCall => ({
    fn: "linear",
    vals,
    base: i * 3,
    step: 1 + i,
    valType: "slot",
  })),
];

function ours(call: PrinterCall): string {
  return call.fn === "log2"
    ? formatLog2Hist(call.vals, call.valType)
    : formatLinearHist(call.vals, call.base, call.step, call.valType);
}

kernelTest(
  "formatLog2Hist/formatLinearHist print what libbpf-tools' C printers print",
  async () => {
    const theirs = await runCPrinters(RUNQLAT, SAME_AS_C);
    assertEquals(theirs.length, SAME_AS_C.length);
    SAME_AS_C.forEach((call, i) => assertEquals(ours(call), theirs[i], JSON.stringify(call)));
    assertOk(
      theirs.some((text) => text.startsWith("               nsecs")),
      "wide layout exercised",
    );
  },
  { commands: [RUNQLAT, "gdb", "objdump"] },
);

kernelTest("formatLog2Hist departs from C only where C overflows", async () => {
  // 200,000,000 * 40 wraps in 32 bits, and 3,000,000,000 prints negative through %d.
  const calls: PrinterCall[] = [
    { fn: "log2", vals: [200000000, 100000000], valType: "usecs" },
    { fn: "log2", vals: [3000000000], valType: "usecs" },
  ];
  // Slot 63: C shifts 1ULL << 64 (undefined; x86 masks it to << 0) and prints "-1 -> 0".
  calls.push({ fn: "log2", vals: slots(64, { 63: 1 }), valType: "x" });
  const [wrapped, negative, slot63] = await runCPrinters(RUNQLAT, calls);
  assertOk(wrapped !== ours(calls[0]));
  assertOk(wrapped.includes(": 200000000 |") && !wrapped.includes("*".repeat(40)));
  assertOk(ours(calls[0]).includes(`: 200000000 |${"*".repeat(40)}|`));
  assertOk(negative.includes(": -1294967296 |"));
  assertOk(ours(calls[1]).includes(": 3000000000 |"));
  assertOk(
    slot63.endsWith(
      "                  -1 -> 0                    : 1        |********************|\n",
    ),
  );
  assertOk(
    ours(calls[2]).endsWith(
      " 9223372036854775808 -> 18446744073709551615 : 1        |" + "*".repeat(20) + "|\n",
    ),
  );
}, { commands: [RUNQLAT, "gdb", "objdump"] });
