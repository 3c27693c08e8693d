import assert from "node:assert/strict";
import {
  parseTracepointFormat,
  readTracepointFormat,
  recordedFormatReader,
  tracefsRoot,
  TracepointNotFoundError,
} from "../../../lib/tracefs/mod.ts";
import { kernelTest } from "../../support/kernel.ts";

/** Recorded on kernel 6.18: events/syscalls/sys_enter_openat/format (print fmt shortened). */
const OPENAT_FORMAT = `name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename))
`;

/** Recorded on kernel 6.18: events/sched/sched_process_exec/format. */
const EXEC_FORMAT = `name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid
`;

/** Recorded on kernel 6.18: events/raw_syscalls/sys_enter/format. */
const SYS_ENTER_FORMAT = `name: sys_enter
ID: 443
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;
\tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;

print fmt: "NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)", REC->id, REC->args[0], REC->args[1]
`;

Deno.test("parse: pointer and common fields (sys_enter_openat)", () => {
  const fmt = parseTracepointFormat(OPENAT_FORMAT, "syscalls");
  assert.equal(fmt.name, "sys_enter_openat");
  assert.equal(fmt.category, "syscalls");
  assert.equal(fmt.id, 782);
  assert.equal(fmt.fields.length, 9);
  assert.deepEqual(fmt.field("common_type"), {
    name: "common_type",
    type: "unsigned short",
    offset: 0,
    size: 2,
    signed: false,
  });
  assert.deepEqual(fmt.field("common_pid"), {
    name: "common_pid",
    type: "int",
    offset: 4,
    size: 4,
    signed: true,
  });
  assert.deepEqual(fmt.field("filename"), {
    name: "filename",
    type: "const char *",
    offset: 24,
    size: 8,
    signed: false,
  });
  assert.equal(fmt.field("mode").type, "umode_t");
  assert.equal(fmt.field("mode").offset, 40);
});

Deno.test("parse: __data_loc field (sched_process_exec)", () => {
  const fmt = parseTracepointFormat(EXEC_FORMAT, "sched");
  assert.deepEqual(fmt.field("filename"), {
    name: "filename",
    type: "char[]",
    offset: 8,
    size: 4,
    signed: false,
    isDataLoc: true,
  });
  assert.equal(fmt.field("pid").offset, 12);
  assert.equal(fmt.field("old_pid").signed, true);
});

Deno.test("parse: fixed arrays (raw_syscalls sys_enter)", () => {
  const fmt = parseTracepointFormat(SYS_ENTER_FORMAT, "raw_syscalls");
  assert.deepEqual(fmt.field("args"), {
    name: "args",
    type: "unsigned long",
    offset: 16,
    size: 48,
    signed: false,
    arrayLength: 6,
  });
  assert.equal(fmt.field("id").signed, true);
});

Deno.test("parse: __rel_loc and non-numeric array length", () => {
  const fmt = parseTracepointFormat(
    `name: t\nID: 1\nformat:\n` +
      `\tfield:__rel_loc char[] s;\toffset:8;\tsize:4;\tsigned:0;\n` +
      `\tfield:__u8 saddr[sizeof(struct sockaddr_in6)];\toffset:12;\tsize:28;\tsigned:0;\n`,
    "x",
  );
  assert.equal(fmt.field("s").isRelLoc, true);
  assert.equal(fmt.field("s").type, "char[]");
  assert.equal(fmt.field("saddr").type, "__u8");
  assert.equal(fmt.field("saddr").arrayLength, undefined);
  assert.equal(fmt.field("saddr").size, 28);
});

Deno.test("field(): missing field names the tracepoint and its fields", () => {
  const fmt = parseTracepointFormat(EXEC_FORMAT, "sched");
  assert.throws(
    () => fmt.field("nope"),
    {
      message:
        "tracepoint sched:sched_process_exec has no field 'nope' (fields: filename, pid, old_pid, plus common_*)",
    },
  );
});

Deno.test("parse: garbage is rejected", () => {
  assert.throws(() => parseTracepointFormat("hello\n"), /missing 'name:' or 'ID:'/);
});

kernelTest("live: sched_switch format", () => {
  const fmt = readTracepointFormat("sched", "sched_switch");
  const id = Number(Deno.readTextFileSync(`${tracefsRoot()}/events/sched/sched_switch/id`));
  assert.equal(fmt.id, id);
  assert.equal(fmt.category, "sched");
  assert.equal(fmt.field("common_pid").offset, 4);
  const prevComm = fmt.field("prev_comm");
  assert.equal(prevComm.type, "char");
  assert.equal(prevComm.arrayLength, 16);
  assert.equal(prevComm.size, 16);
  for (
    const name of ["prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid", "next_prio"]
  ) {
    const f = fmt.field(name);
    assert.ok(f.offset >= 8 && f.offset + f.size <= 64, `${name} inside the record`);
  }
  assert.equal(fmt.field("next_pid").size, 4);
  assert.equal(fmt.field("next_pid").signed, true);
  // Cached: the same object comes back.
  assert.equal(readTracepointFormat("sched", "sched_switch"), fmt);
});

kernelTest("live: sched_wakeup format", () => {
  const fmt = readTracepointFormat("sched", "sched_wakeup");
  assert.equal(fmt.name, "sched_wakeup");
  assert.equal(fmt.field("comm").arrayLength, 16);
  assert.equal(fmt.field("pid").size, 4);
  assert.equal(fmt.field("pid").signed, true);
  assert.equal(fmt.field("pid").offset, fmt.field("comm").offset + 16);
  assert.equal(fmt.field("target_cpu").size, 4);
});

kernelTest("live: block_rq_issue format", () => {
  const fmt = readTracepointFormat("block", "block_rq_issue");
  assert.equal(fmt.field("dev").size, 4);
  assert.equal(fmt.field("sector").size, 8);
  assert.equal(fmt.field("nr_sector").type, "unsigned int");
  assert.equal(fmt.field("rwbs").arrayLength, 10);
  assert.equal(fmt.field("comm").arrayLength, 16);
  assert.equal(fmt.field("cmd").isDataLoc, true);
  assert.equal(fmt.field("cmd").size, 4);
});

kernelTest("live: every format file on this kernel parses", () => {
  const root = `${tracefsRoot()}/events`;
  let count = 0;
  for (const category of Deno.readDirSync(root)) {
    if (!category.isDirectory) continue;
    for (const event of Deno.readDirSync(`${root}/${category.name}`)) {
      if (!event.isDirectory) continue;
      const fmt = readTracepointFormat(category.name, event.name);
      assert.equal(fmt.name, event.name);
      assert.ok(fmt.fields.length >= 4, `${category.name}:${event.name} has common fields`);
      count++;
    }
  }
  assert.ok(count > 100, `parsed ${count} formats`);
});

kernelTest("live: missing tracepoint throws TracepointNotFoundError", () => {
  assert.throws(
    () => readTracepointFormat("sched", "sched_foo"),
    (e: unknown) =>
      e instanceof TracepointNotFoundError &&
      e.message ===
        `tracepoint sched:sched_foo not found (no ${tracefsRoot()}/events/sched/sched_foo)`,
  );
  assert.throws(() => readTracepointFormat("../etc", "passwd"), /invalid tracepoint name/);
});

Deno.test("recordedFormatReader: formats without tracefs", () => {
  const read = recordedFormatReader({ "sched:sched_process_exec": EXEC_FORMAT });
  const fmt = read("sched", "sched_process_exec");
  assert.equal(fmt.field("pid").offset, 12);
  assert.equal(read("sched", "sched_process_exec"), fmt);
  assert.throws(
    () => read("sched", "sched_switch"),
    (e: unknown) =>
      e instanceof TracepointNotFoundError &&
      e.message === "tracepoint sched:sched_switch not found (no recorded format)",
  );
});
