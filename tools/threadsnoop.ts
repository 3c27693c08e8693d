#!/usr/bin/env -S deno run -A
/**
 * threadsnoop: trace thread creation through pthread_create(), one line per
 * new thread with the creating process and the thread's start function.
 *
 * Events: a uprobe on pthread_create in the C library (libc.so.6 since
 * glibc 2.34, libpthread.so.0 before; -l names another file). The program
 * sends the caller and the start routine's address (the third argument);
 * user space names it from the process's mappings and ELF symbols.
 * Output follows bcc threadsnoop (libbpf-tools has none).
 *
 *     # deno run -A tools/threadsnoop.ts
 *     TIME(ms)   PID    COMM             FUNC
 *     0          22010  python3          pythread_wrapper
 *     1          22010  python3          pythread_wrapper
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, readableFile } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { arg, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r7, r8 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { ElfFile } from "../lib/symbols/elf.ts";
import { FileSymbolCache, ProcessSymbols, UNKNOWN } from "../lib/symbols/user.ts";

/** Where the C library may be (Debian/Ubuntu multiarch, then Fedora/Arch layouts). */
const LIBRARY_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

/** What the operator asked for. */
interface Options {
  /** The file defining pthread_create (found when not given). */
  library?: string;
}

/** The first of libc.so.6, libpthread.so.0 that defines pthread_create. */
function findLibrary(): string {
  for (const name of ["libc.so.6", "libpthread.so.0"]) {
    for (const dir of LIBRARY_DIRS) {
      try {
        const sym = ElfFile.open(`${dir}/${name}`).symbol("pthread_create");
        if (sym && sym.type === "FUNC") return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  throw new UsageError("no C library with pthread_create found: give it with -l");
}

// --- BPF side ---------------------------------------------------------------

/** One pthread_create() call. */
const threadEvent = defineSchema("thread_event", {
  ts_ns: "u64",
  start: "u64",
  pid: "u32",
  tid: "u32",
  comm: char(16),
});

function buildPrograms(o: Options, ch: EventsDef) {
  const p = uprobe(o.library ?? findLibrary(), "pthread_create", { name: "threadsnoop" });
  const done = p.label();
  reserve(p, ch, r7, done);
  arg(p, r8, 2); // void *(*start_routine)(void *)
  threadEvent.store(p, r7, "start", r8);
  p.ktime(r0);
  threadEvent.store(p, r7, "ts_ns", r0);
  p.call("get_current_pid_tgid");
  threadEvent.store(p, r7, "tid", r0);
  p.rsh(r0, 32);
  threadEvent.store(p, r7, "pid", r0);
  threadEvent.currentComm(p, r7, "comm");
  submit(p, ch, r7);
  p.bind(done);
  return [p.ret(0).build()];
}

// --- user side --------------------------------------------------------------

/** The first event's time (TIME(ms) counts from it, as bcc) and the symbol tables. */
interface State {
  first?: bigint;
  files: FileSymbolCache;
  processes: Map<number, ProcessSymbols>;
}

/** The start routine's name; the process's mappings are read again once on a miss. */
function functionName(state: State, pid: number, address: bigint): string {
  let proc = state.processes.get(pid);
  if (proc) {
    const name = proc.resolve(address)?.name;
    if (name) return name;
  }
  proc = new ProcessSymbols(pid, state.files);
  state.processes.set(pid, proc);
  return proc.resolve(address)?.name ?? UNKNOWN;
}

function decode(data: Uint8Array, state: State) {
  const e = threadEvent.decode(data);
  state.first ??= e.ts_ns;
  return {
    ...e,
    ms: Number((e.ts_ns - state.first) / 1_000_000n),
    func: functionName(state, e.pid, e.start),
  };
}

function textLine(data: Uint8Array, _o: Options, state: State): string {
  const e = decode(data, state);
  return `${String(e.ms).padEnd(10)} ${String(e.pid).padEnd(6)} ${escapeText(e.comm).padEnd(16)} ` +
    `${escapeText(e.func)}\n`;
}

function jsonFields(data: Uint8Array, _o: Options, state: State) {
  const e = decode(data, state);
  return { ms: e.ms, pid: e.pid, tid: e.tid, comm: e.comm, func: e.func, start: Number(e.start) };
}

export const tool = eventTool({
  name: "threadsnoop",
  summary: "Trace thread creation via pthread_create().",
  examples: [
    ["threadsnoop", "trace new threads and their start functions"],
    ["threadsnoop -l LIB", "probe pthread_create in LIB"],
  ],
  flags: {
    library: option("LIB", "the library defining pthread_create", readableFile, {
      short: "l",
      long: "library",
    }),
  },
}, {
  recordSize: threadEvent.size,
  build: buildPrograms,
  prepare: (): State => ({ files: new FileSymbolCache(), processes: new Map() }),
  header: () => `${"TIME(ms)".padEnd(10)} ${"PID".padEnd(6)} ${"COMM".padEnd(16)} FUNC\n`,
  text: textLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
