import { assertEquals, assertThrows } from "./assert.ts";
import {
  formatFixed,
  formatSecondsColumn,
  formatTimeOfDay,
  formatTimestampHeader,
  secondsBetween,
} from "../../../lib/format/time.ts";
import { runOk } from "../../support/process.ts";

Deno.test("formatTimeOfDay / formatTimestampHeader: local HH:MM:SS", () => {
  assertEquals(formatTimeOfDay(new Date(2024, 0, 2, 3, 4, 5)), "03:04:05");
  assertEquals(formatTimeOfDay(new Date(2024, 11, 31, 23, 59, 59, 999)), "23:59:59");
  assertEquals(formatTimestampHeader(new Date(2024, 0, 2, 13, 0, 9)), "13:00:09\n");
  assertEquals(/^\d\d:\d\d:\d\d$/.test(formatTimeOfDay()), true);
});

Deno.test("formatTimeOfDay agrees with date(1) in this process's time zone", async () => {
  const theirs = (await runOk("date", ["+%H:%M:%S"])).trim();
  const ours = formatTimeOfDay();
  // Allow for the second ticking over between the two readings.
  const toSeconds = (t: string) => t.split(":").reduce((s, part) => s * 60 + Number(part), 0);
  const delta = (toSeconds(ours) - toSeconds(theirs) + 86400) % 86400;
  assertEquals(delta <= 1, true, `date says ${theirs}, we say ${ours}`);
});

Deno.test("formatFixed: glibc %.Nf rounding (exact value, ties to even)", () => {
  assertEquals(formatFixed(0.125, 2), "0.12");
  assertEquals(formatFixed(0.375, 2), "0.38");
  assertEquals(formatFixed(2.5, 0), "2");
  assertEquals(formatFixed(3.5, 0), "4");
  assertEquals(formatFixed(1.0005, 3), "1.000"); // 1.000499999999999944932...
  assertEquals(formatFixed(1.0015, 3), "1.002"); // 1.001500000000000056843...
  assertEquals(formatFixed(0, 3), "0.000");
  assertEquals(formatFixed(-0, 3), "-0.000");
  assertEquals(formatFixed(-0.0001, 3), "-0.000");
  assertEquals(formatFixed(-12.3456, 2), "-12.35");
  assertEquals(formatFixed(1e21, 1), "1000000000000000000000.0");
  assertEquals(formatFixed(5e-324, 3), "0.000");
  assertEquals(formatFixed(123.456, 0), "123");
  assertEquals(formatFixed(NaN, 3), "nan");
  assertEquals(formatFixed(-Infinity, 3), "-inf");
  assertThrows(() => formatFixed(1, -1), RangeError);
});

Deno.test("formatFixed agrees with C printf (through awk) on awkward values", async () => {
  const values = [0.0005, 0.0015, 0.0025, 1.2345, 2.675, 1e-7, 1234567.8915, 0.1 + 0.2, 4.35];
  // awk reads each argument with strtod (exact for 17 significant digits) and formats
  // with the C library's printf, on doubles (printf(1) would use long double).
  const program = `BEGIN { for (i = 1; i < ARGC; i++) printf "%.3f\\n", ARGV[i] + 0 }`;
  const args = [program, ...values.map((v) => v.toPrecision(17))];
  const theirs = (await runOk("awk", args)).trim().split("\n");
  assertEquals(values.map((v) => formatFixed(v, 3)), theirs);
});

Deno.test("secondsBetween / formatSecondsColumn: TIME(s) cells", () => {
  assertEquals(secondsBetween(1_000_000_000n, 3_500_000_000n), 2.5);
  assertEquals(secondsBetween(5n, 5n), 0);
  assertEquals(formatSecondsColumn(secondsBetween(0n, 1_234_567_891n)), "1.235   ");
  assertEquals(formatSecondsColumn(123456.5, 8, 3), "123456.500");
  assertEquals(formatSecondsColumn(0.0625, 9, 3), "0.062    ");
});
