/** The stack tools' report layouts, on fixed stacks: bcc's multi-line form and folded lines. */
import { deepEqual, equal as assertEquals } from "node:assert/strict";
import {
  formatStackReport,
  stackReportJson,
  type StackReportOptions,
  type SymbolizedStack,
} from "../../../lib/cli/stack_report.ts";

const STACKS: SymbolizedStack[] = [
  {
    pid: 7,
    shownId: 7,
    comm: "app",
    value: 2,
    kernel: ["clear_page_erms", "do_syscall_64"],
    user: ["memset", "main"],
  },
  { pid: 7, shownId: 7, comm: "app", value: 5, user: ["spin", "main"] },
  { pid: 9, shownId: 9, comm: "app", value: 1, user: ["spin", "main"] },
  { pid: 0, shownId: 0, comm: "swapper/1", value: 3, kernel: "missed" },
  { pid: 8, shownId: 8, comm: "evil\x1b[2J", value: 1, user: "missed" },
];

const BOTH: StackReportOptions = {
  user: true,
  kernel: true,
  delimiter: false,
  annotate: false,
  folded: false,
};

Deno.test("multi-line: kernel frames, then user frames, innermost first; comm (pid); count", () => {
  assertEquals(
    formatStackReport(STACKS.slice(0, 1), { ...BOTH, delimiter: true, annotate: true }),
    [
      "    clear_page_erms_[k]",
      "    do_syscall_64_[k]",
      "    --",
      "    memset",
      "    main",
      "    -                app (7)",
      "        2",
      "",
      "",
    ].join("\n"),
  );
});

Deno.test("multi-line: missed stacks, and control characters escaped", () => {
  assertEquals(
    formatStackReport(STACKS.slice(3), BOTH),
    [
      "    [Missed Kernel Stack]",
      "    -                swapper/1 (0)",
      "        3",
      "",
      "    [Missed User Stack]",
      "    -                evil\\x1b[2J (8)",
      "        1",
      "",
      "",
    ].join("\n"),
  );
});

Deno.test("folded: root first, delimiter, annotations; same lines of two processes merge", () => {
  assertEquals(
    formatStackReport(STACKS, { ...BOTH, folded: true, delimiter: true, annotate: true }),
    [
      "evil\\x1b[2J;[Missed User Stack] 1",
      "app;main;memset;-;do_syscall_64_[k];clear_page_erms_[k] 2",
      "swapper/1;[Missed Kernel Stack] 3",
      "app;main;spin 6",
      "",
    ].join("\n"),
  );
});

Deno.test("folded -U / -K: only the stacks asked for", () => {
  assertEquals(
    formatStackReport(STACKS.slice(0, 1), { ...BOTH, folded: true, kernel: false }),
    "app;main;memset 2\n",
  );
  assertEquals(
    formatStackReport(STACKS.slice(0, 1), { ...BOTH, folded: true, user: false }),
    "app;do_syscall_64;clear_page_erms 2\n",
  );
});

Deno.test("JSON: the same stacks and values, missed stacks as null", () => {
  deepEqual(stackReportJson(STACKS.slice(3, 4)), [
    { pid: 0, id: 0, comm: "swapper/1", kernel: null, value: 3 },
  ]);
  deepEqual(stackReportJson(STACKS.slice(1, 2)), [
    { pid: 7, id: 7, comm: "app", user: ["spin", "main"], value: 5 },
  ]);
});
