/** Folded stacks: the exact line format, safe frames, parsing as flamegraph.pl does. */
import { deepEqual as assertEquals } from "node:assert/strict";
import {
  foldedFrame,
  formatFoldedLine,
  mergeFolded,
  parseFolded,
} from "../../../lib/format/folded.ts";

Deno.test("formatFoldedLine: root first, ';' between frames, one space, the count", () => {
  assertEquals(formatFoldedLine(["bash", "main", "read"], 12), "bash;main;read 12");
  assertEquals(formatFoldedLine(["idle"], 1), "idle 1");
});

Deno.test("foldedFrame: separators and control characters cannot break a line", () => {
  assertEquals(foldedFrame("std::map<int; int>"), "std::map<int: int>");
  assertEquals(foldedFrame("evil\nname\x1b[31m"), "evil\\x0aname\\x1b[31m");
  assertEquals(foldedFrame("JS:*spin file:///a.js:1:2"), "JS:*spin file:///a.js:1:2");
});

Deno.test("parseFolded: count after the last space, frames may hold spaces, junk skipped", () => {
  const text = [
    "app;JS:*spin file:///a.js:1:2;[unknown] 40",
    "app;main 2.5",
    "no count here",
    "",
    "app;main;x 7\r",
  ].join("\n");
  assertEquals(parseFolded(text), [
    { frames: ["app", "JS:*spin file:///a.js:1:2", "[unknown]"], count: 40 },
    { frames: ["app", "main"], count: 2.5 },
    { frames: ["app", "main", "x"], count: 7 },
  ]);
});

Deno.test("parseFolded and formatFoldedLine round-trip", () => {
  const lines = ["a;b;c 1", "a;b 20", "x;-;y_[k] 3"];
  for (const line of lines) {
    const [s] = parseFolded(line);
    assertEquals(formatFoldedLine(s.frames, s.count), line);
  }
});

Deno.test("mergeFolded: identical stacks add up, first-seen order kept", () => {
  assertEquals(mergeFolded(parseFolded("a;b 1\nc 2\na;b 3\n")), [
    { frames: ["a", "b"], count: 4 },
    { frames: ["c"], count: 2 },
  ]);
});
