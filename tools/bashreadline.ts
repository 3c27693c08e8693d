#!/usr/bin/env -S deno run -A
/**
 * bashreadline: print the commands typed into every running bash, as they
 * are entered (whether or not they then succeed).
 *
 * Events: a uretprobe on readline(), in /bin/bash (Debian links readline
 * statically), else in the shared library bash needs that defines it, or in
 * the library given with -s. The returned line is copied
 * with bpf_probe_read_user_str into a record sent through a ring buffer (a
 * perf buffer on kernels before 5.8); only processes named "bash" count, as
 * in bcc (other programs use readline too). Output follows bcc bashreadline.
 *
 *     # deno run -A tools/bashreadline.ts
 *     TIME      PID     COMMAND
 *     05:28:25  21176   ls -l
 *     05:28:28  21176   date
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool, withBareValue } from "../lib/cli/drivers/events.ts";
import { option, readableFile } from "../lib/cli/flags.ts";
import { type EventsDef, output } from "../lib/dsl/events.ts";
import { ProbeTargetError, retval, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r7, r8 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { ElfFile } from "../lib/symbols/elf.ts";

const DEFAULT_BINARY = "/bin/bash";
/** -s without a value: bcc's default library path. */
const DEFAULT_SHARED = "/lib/libreadline.so";
/** Bytes of each line kept (as bcc and libbpf-tools: 80). */
const MAX_LINE = 80;

/** Where the dynamic loader looks for libraries (x86_64 Debian/Fedora layouts). */
const LIBRARY_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

/** The file that defines readline: -s, else bash itself, else a library bash needs. */
function readlineBinary(shared: string | undefined): string {
  if (shared !== undefined) return shared;
  const bash = ElfFile.open(DEFAULT_BINARY);
  if (bash.symbol("readline")) return DEFAULT_BINARY;
  for (const lib of bash.needed) {
    for (const dir of LIBRARY_DIRS) {
      try {
        if (ElfFile.open(`${dir}/${lib}`).symbol("readline")) return `${dir}/${lib}`;
      } catch { /* not in this directory */ }
    }
  }
  return DEFAULT_BINARY; // uprobe() says it has no readline
}

// --- BPF side ---------------------------------------------------------------

/** One entered line. */
const lineEvent = defineSchema("line_event", {
  pid: "u32",
  comm: char(16),
  line: char(MAX_LINE),
});

/** uretprobe:readline: send the returned line, when the caller is bash and it is not NULL. */
function readlineReturn(binary: string, ch: EventsDef) {
  const p = uprobe(binary, "readline", { retprobe: true, name: "bashreadline" });
  const rec = p.stack(lineEvent.size);
  retval(p, r7).returnIf(r7, "==", 0);
  p.zeroStack(rec, lineEvent.size).stackPtr(r8, rec);
  lineEvent.currentComm(p, r8, "comm");
  // comm == "bash\0" (little-endian "bash" then a NUL)
  p.load(r0, "u32", r8, lineEvent.offset("comm")).returnIf(r0, "!=", 0x68736162);
  p.load(r0, "u8", r8, lineEvent.offset("comm") + 4).returnIf(r0, "!=", 0);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  lineEvent.store(p, r8, "pid", r0);
  lineEvent.readString(p, r8, "line", r7);
  output(p, ch, r8, lineEvent.size);
  return p.ret(0);
}

/** The program, on the file that defines readline. */
function buildPrograms(o: { shared?: string }, ch: EventsDef) {
  const binary = readlineBinary(o.shared);
  try {
    return [readlineReturn(binary, ch).build()];
  } catch (e) {
    if (e instanceof ProbeTargetError && /has no function/.test(e.message)) {
      throw new ProbeTargetError(`${e.message} (give the library that has it with -s)`);
    }
    throw e;
  }
}

// --- user side --------------------------------------------------------------

const declared = eventTool({
  name: "bashreadline",
  summary: "Print entered bash commands from all running shells.",
  examples: [
    ["bashreadline", "trace commands typed into /bin/bash"],
    ["bashreadline -s /lib/libreadline.so", "readline from this library"],
  ],
  flags: {
    shared: option(
      "SHARED",
      `library with readline (alone: ${DEFAULT_SHARED})`,
      readableFile,
      { short: "s" },
    ),
  },
  // -s changes where the probe attaches, not the program: nothing more to verify.
  variants: [],
}, {
  recordSize: lineEvent.size,
  build: buildPrograms,
  header: () => `${"TIME".padEnd(9)} ${"PID".padEnd(7)} COMMAND\n`,
  text: (data) => {
    const e = lineEvent.decode(data);
    return `${formatTimeOfDay(new Date()).padEnd(9)} ${String(e.pid).padEnd(7)} ${
      escapeText(e.line)
    }\n`;
  },
  json: (data) => {
    const e = lineEvent.decode(data);
    return { pid: e.pid, command: e.line };
  },
});

/** -s without a value means bcc's default library (its nargs="?"). */
export const tool = withBareValue(declared, ["-s", "--shared"], DEFAULT_SHARED);

if (import.meta.main) await tool.main();
