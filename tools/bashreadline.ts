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
// the modules it uses. --dump code is imported on demand.
import { parseToolArgs } from "../lib/cli/args.ts";
import { ringBytesFromEnv, streamEvents } from "../lib/cli/event_loop.ts";
import { writeOut } from "../lib/cli/output.ts";
import { runTool } from "../lib/cli/run.ts";
import { loadAndAttach } from "../lib/cli/session.ts";
import { StopSignal } from "../lib/cli/stop.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { defineEvents, type EventsDef, output } from "../lib/dsl/events.ts";
import { ProbeTargetError, retval, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r7, r8 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText, stringifyJson } from "../lib/format/escape.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireBpfPrivileges } from "../lib/kernel/privileges.ts";
import { eventBufferKind } from "../lib/kernel/ringbuf.ts";
import { ElfFile } from "../lib/symbols/elf.ts";

const DEFAULT_BINARY = "/bin/bash";
/** -s without a value: bcc's default library path. */
const DEFAULT_SHARED = "/lib/libreadline.so";
/** Bytes of each line kept (as bcc and libbpf-tools: 80). */
const MAX_LINE = 80;

const HELP = {
  name: "bashreadline",
  summary: "Print entered bash commands from all running shells.",
  usage: "bashreadline [-h] [-s [SHARED]]",
  examples: [
    ["bashreadline", "trace commands typed into /bin/bash"],
    ["bashreadline -s /usr/lib/libreadline.so", "readline from this library"],
  ] as [string, string][],
  flags: [
    {
      flags: "-s, --shared [SHARED]",
      help: `the library that holds readline (default with -s: ${DEFAULT_SHARED})`,
    },
  ],
};

function parseOptions(argv: string[]) {
  // -s takes an optional value (as bcc's nargs="?"): "-s" alone means the default library.
  const args = argv.flatMap((a, i) =>
    (a === "-s" || a === "--shared") && (argv[i + 1] === undefined || argv[i + 1].startsWith("-"))
      ? [a, DEFAULT_SHARED]
      : [a]
  );
  const { values, positionals } = parseToolArgs(args, {
    shared: { type: "string", short: "s" },
  });
  if (positionals.length) throw new UsageError(`unrecognized argument: '${positionals[0]}'`);
  return { values, shared: values.shared };
}

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

// --- user side --------------------------------------------------------------

await runTool("bashreadline", async () => {
  const { values, shared } = parseOptions(Deno.args);
  if (values.help) return writeOut(formatHelp(HELP));
  const binary = readlineBinary(shared);
  if (!values.dump) requireBpfPrivileges();
  const channel = defineEvents({
    kind: values.dump ? "ringbuf" : eventBufferKind(),
    recordSize: lineEvent.size,
    ringBytes: ringBytesFromEnv(),
  });
  let programs;
  try {
    programs = [readlineReturn(binary, channel).build()];
  } catch (e) {
    if (e instanceof ProbeTargetError && /has no function/.test(e.message)) {
      throw new ProbeTargetError(`${e.message} (give the library that has it with -s)`);
    }
    throw e;
  }
  if (values.dump) return writeOut((await import("../lib/cli/dump.ts")).dumpPrograms(programs));

  const session = loadAndAttach(programs, { verbose: values.verbose });
  const stop = new StopSignal();
  if (!values.json) writeOut(`${"TIME".padEnd(9)} ${"PID".padEnd(7)} COMMAND\n`);
  try {
    await streamEvents({ maps: session.maps, channel, stop }, (data) => {
      const e = lineEvent.decode(data);
      if (values.json) {
        return stringifyJson({ time: new Date().toISOString(), pid: e.pid, command: e.line }) +
          "\n";
      }
      return `${formatTimeOfDay(new Date()).padEnd(9)} ${String(e.pid).padEnd(7)} ${
        escapeText(e.line)
      }\n`;
    });
  } finally {
    stop.dispose();
  }
});
