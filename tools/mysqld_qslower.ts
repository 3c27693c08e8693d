#!/usr/bin/env -S deno run -A
/**
 * mysqld_qslower: MySQL/MariaDB queries slower than a threshold (default
 * 1 ms; 0 shows all), for one server process.
 *
 * Events: the server's USDT probes mysql:query__start and mysql:query__done
 * when it was built with them (-DENABLE_DTRACE=1; their semaphores are
 * raised in the server's memory while tracing), otherwise a uprobe and a
 * uretprobe on its query dispatch function, dispatch_command(), for
 * COM_QUERY commands (the distribution builds of MariaDB have no USDT
 * probes). The start time and the query text (first 128 bytes, as bcc) are
 * kept per thread at the start; at the end, only queries over the threshold
 * are sent to user space. Output follows bcc mysqld_qslower: TIME(s) is
 * when the query started, from the first query shown; PID is the server
 * thread that ran it (bcc's pid_tgid truncation: the thread ID).
 *
 *     # deno run -A tools/mysqld_qslower.ts $(pgrep -x mariadbd)
 *     Tracing MySQL server queries for PID 7722 slower than 1 ms...
 *     TIME(s)        PID          MS QUERY
 *     0.000000       7731    200.512 SELECT SLEEP(0.2)
 *     1.204117       7731    500.437 SELECT SLEEP(0.5)
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { integer, option, PID_MAX, positional, readableFile } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, output } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import {
  arg,
  ProbeTargetError,
  uprobe,
  usdt,
  type UsdtProgram,
  usdtSemaphoreAddress,
} from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { addToUsdtSemaphore } from "../lib/kernel/process_memory.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { ElfFile, type ElfSymbol } from "../lib/symbols/elf.ts";

/** Bytes of query text kept (as bcc). */
const QUERY_MAX = 128;
/** enum_server_command COM_QUERY: a text query (the others are pings, prepares...). */
const COM_QUERY = 3;

/** The server's PID: a process that exists (its executable is where the probes go). */
function serverPid(text: string, name: string): number {
  const pid = integer(1, PID_MAX, "PID")(text, name);
  try {
    Deno.statSync(`/proc/${pid}`);
  } catch {
    throw new UsageError(`no process with PID ${pid}`);
  }
  return pid;
}

/** min_ms: a non-negative number of milliseconds (fractions allowed). */
function milliseconds(text: string): string {
  if (!/^\d+(\.\d*)?$|^\.\d+$/.test(text) || !Number.isFinite(Number(text))) {
    throw new UsageError(`invalid min_ms '${text}': not a number of milliseconds`);
  }
  return text;
}

/** What the operator asked for. */
interface Options {
  pid: number;
  /** The threshold as typed (the banner repeats it). */
  minMsText: string;
  minNs: number;
  /** The server's executable: /proc/PID/exe, or --binary. */
  binary: string;
}

/** A server binary installed here, to verify the programs against without a running server. */
const INSTALLED = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/libexec/mysqld"].find((f) => {
  try {
    return Deno.statSync(f).isFile;
  } catch {
    return false;
  }
});

// --- where the queries are ---------------------------------------------------

/** How queries are seen in this server binary. */
type QueryProbes =
  | { kind: "usdt"; start: UsdtProgram[]; done: UsdtProgram[] }
  | {
    kind: "uprobe";
    symbol: ElfSymbol;
    /** Argument holding the command, and where the query text and its length are. */
    commandArg: number;
    query: { kind: "packet"; textArg: number; lengthArg: number } | {
      kind: "com_data";
      dataArg: number;
    };
  };

/**
 * dispatch_command's signature, from its mangled name: MariaDB and MySQL 5.6
 * `dispatch_command(enum_server_command, THD*, char* packet, uint length, ...)`;
 * MySQL 5.7/8.0 `dispatch_command(THD*, const COM_DATA*, enum_server_command)`
 * where COM_DATA starts with the query pointer and its length.
 */
function findDispatch(elf: ElfFile, binary: string, pid: number): QueryProbes {
  const name = binary === `/proc/${pid}/exe` ? exeName(pid) : binary;
  const dispatch = elf.symbols.find((s) =>
    s.type === "FUNC" && s.sectionIndex !== 0 && /^_Z16dispatch_command/.test(s.name)
  );
  if (!dispatch) {
    throw new ProbeTargetError(
      `${name} (PID ${pid}) has neither USDT probes mysql:query__start/query__done ` +
        "nor a dispatch_command function: is it a MySQL or MariaDB server?",
    );
  }
  const params = dispatch.name.replace(/^_Z16dispatch_command/, "");
  if (params.startsWith("19enum_server_command")) {
    return {
      kind: "uprobe",
      symbol: dispatch,
      commandArg: 0,
      query: { kind: "packet", textArg: 2, lengthArg: 3 },
    };
  }
  if (/^P3THDPK8COM_DATA19enum_server_command/.test(params)) {
    return {
      kind: "uprobe",
      symbol: dispatch,
      commandArg: 2,
      query: { kind: "com_data", dataArg: 1 },
    };
  }
  throw new ProbeTargetError(`${name}: unknown dispatch_command signature ${dispatch.name}`);
}

/** The server's executable as /proc/PID/exe names it (for messages; probes use the link). */
function exeName(pid: number): string {
  try {
    return Deno.readLinkSync(`/proc/${pid}/exe`);
  } catch {
    return `/proc/${pid}/exe`;
  }
}

function findQueryProbes(binary: string, pid: number): QueryProbes {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(binary);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ProbeTargetError(`cannot read the executable of PID ${pid}: ${why}`);
  }
  if (elf.usdt("mysql", "query__start").length && elf.usdt("mysql", "query__done").length) {
    return {
      kind: "usdt",
      start: usdt(binary, "mysql", "query__start", { pid, name: "mysqld_qs_start" }),
      done: usdt(binary, "mysql", "query__done", { pid, name: "mysqld_qs_done" }),
    };
  }
  return findDispatch(elf, binary, pid);
}

// --- BPF side ---------------------------------------------------------------

/** A query: kept per thread from start to end, then sent as the event. */
const queryEvent = defineSchema("query_event", {
  ts: "u64",
  delta: "u64",
  pid: "u32",
  tid: "u32",
  /** Bytes of the query the server was given (the text may be cut at QUERY_MAX - 1). */
  query_len: "u32",
  query: char(QUERY_MAX),
});

/** Queries in flight, by server thread. */
const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: queryEvent.size,
  maxEntries: 10240,
});

/**
 * Query start: remember when, and the query text, for this thread. `readQuery`
 * leaves the query's user address in r7 and its length in r1 (0: unknown).
 */
function startProgram(p: Probe, pid: number, readQuery: (p: Probe) => void): Probe {
  const rec = p.stack(queryEvent.size), key = p.stack(4);
  p.call("get_current_pid_tgid").mov(r8, r0).rsh(r0, 32).returnIf(r0, "!=", pid);
  p.zeroStack(rec, queryEvent.size).stackPtr(r9, rec);
  p.mov32(r8, r8).store("u32", r10, key, r8);
  queryEvent.store(p, r9, "tid", r8);
  queryEvent.store(p, r9, "pid", pid);
  readQuery(p);
  queryEvent.store(p, r9, "query_len", r1);
  queryEvent.readString(p, r9, "query", r7);
  p.ktime(r0);
  queryEvent.store(p, r9, "ts", r0);
  p.update(starts, key, rec);
  return p.ret(0);
}

/** Query end: over the threshold, send it; either way forget it. */
function doneProgram(p: Probe, pid: number, minNs: number, ch: EventsDef): Probe {
  const key = p.stack(4), forget = p.label();
  p.call("get_current_pid_tgid").mov32(r8, r0).rsh(r0, 32).returnIf(r0, "!=", pid);
  p.store("u32", r10, key, r8).lookup(starts, key).returnIf(r0, "==", 0).mov(r7, r0);
  p.ktime(r8);
  queryEvent.load(p, r1, r7, "ts");
  p.sub(r8, r1).mov64(r1, BigInt(minNs)).jumpIf(r8, "<", r1, forget);
  queryEvent.store(p, r7, "delta", r8);
  output(p, ch, r7, queryEvent.size);
  p.bind(forget).delete(starts, key);
  return p.ret(0);
}

function buildPrograms(
  where: QueryProbes,
  binary: string,
  pid: number,
  minNs: number,
  ch: EventsDef,
) {
  if (where.kind === "usdt") {
    // query__start(query, connection id, db, user, host): argument 0 is the text.
    return [
      ...where.start.map((p) => startProgram(p, pid, () => p.usdtArg(r7, 0).mov(r1, 0))),
      ...where.done.map((p) => doneProgram(p, pid, minNs, ch)),
    ].map((p) => p.build());
  }
  const offset = ElfFile.open(binary).vaddrToFileOffset(where.symbol.value)!;
  const entry = uprobe(binary, offset, { pid, name: "mysqld_qs_start" });
  const exit = uprobe(binary, offset, { pid, retprobe: true, name: "mysqld_qs_done" });
  const q = where.query;
  startProgram(entry, pid, (p) => {
    arg(p, r1, where.commandArg).mov32(r1, r1).returnIf(r1, "!=", COM_QUERY);
    if (q.kind === "packet") {
      arg(p, r7, q.textArg);
      arg(p, r1, q.lengthArg).mov32(r1, r1);
    } else {
      // COM_DATA.com_query = { const char *query; unsigned int length; }
      const tmp = p.stack(16);
      p.zeroStack(tmp, 16);
      arg(p, r3, q.dataArg).stackPtr(r1, tmp).mov(r2, 16).call("probe_read_user");
      p.load(r7, "u64", r10, tmp).load(r1, "u32", r10, tmp + 8);
    }
  });
  return [entry, doneProgram(exit, pid, minNs, ch)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/**
 * Raises the USDT semaphores (so the server fires its probes), and returns
 * what lowers them again when disposed of.
 */
function raiseSemaphores(binary: string, pid: number): Disposable {
  const elf = ElfFile.open(binary);
  const notes = ["query__start", "query__done"].map((name) => elf.usdt("mysql", name));
  const raised: number[] = [];
  const lower = {
    [Symbol.dispose]() {
      for (const address of raised.splice(0)) {
        try {
          addToUsdtSemaphore(pid, address, -1);
        } catch { /* the server has exited */ }
      }
    },
  };
  if (notes.some((n) => n.length === 0)) return lower; // no USDT probes: uprobes
  try {
    for (const note of notes.flat()) {
      const address = usdtSemaphoreAddress(pid, binary, note);
      if (address === undefined || raised.includes(address)) continue;
      addToUsdtSemaphore(pid, address, 1);
      raised.push(address);
    }
  } catch (e) {
    lower[Symbol.dispose]();
    throw e;
  }
  return lower;
}

/** Time origin of TIME(s): the first query shown. */
interface Clock {
  first?: bigint;
}

function decodeQuery(data: Uint8Array, clock: Clock) {
  const e = queryEvent.decode(data);
  clock.first ??= e.ts;
  // The text is NUL-terminated by the read; a known length cuts anything past the query.
  const query = e.query_len > 0 ? e.query.slice(0, e.query_len) : e.query;
  return { e, query, seconds: Number(e.ts - clock.first) / 1e9, ms: Number(e.delta) / 1e6 };
}

export const tool = eventTool({
  name: "mysqld_qslower",
  summary: "Trace MySQL/MariaDB server queries slower than a threshold.",
  examples: [
    ["mysqld_qslower $(pgrep -x mariadbd)", "queries slower than 1 ms"],
    ["mysqld_qslower $(pgrep -x mariadbd) 10", "queries slower than 10 ms"],
    ["mysqld_qslower $(pgrep -x mariadbd) 0", "every query"],
  ],
  flags: {
    binary: option("PATH", "the server's executable (default: /proc/PID/exe)", readableFile),
  },
  positionals: {
    pid: positional("PID", "the mysqld/mariadbd process to trace", serverPid),
    minMs: positional(
      "min_ms",
      "minimum query duration in ms (default 1; 0 shows all)",
      milliseconds,
    ),
  },
  needsArguments: true,
  variants: INSTALLED ? [["--binary", INSTALLED, "1"]] : [],
  options: (v): Options => {
    if (v.pid === undefined) throw new UsageError("needs a PID: the server process to trace");
    const minMsText = v.minMs ?? "1";
    const binary = v.binary ?? `/proc/${v.pid}/exe`;
    return { pid: v.pid, minMsText, minNs: Math.round(Number(minMsText) * 1e6), binary };
  },
}, {
  recordSize: queryEvent.size,
  build: (o, ch) => buildPrograms(findQueryProbes(o.binary, o.pid), o.binary, o.pid, o.minNs, ch),
  prepare: (): Clock => ({}),
  started: (_session, o) => raiseSemaphores(o.binary, o.pid),
  header: (o) =>
    `Tracing MySQL server queries for PID ${o.pid} slower than ${o.minMsText} ms...\n` +
    `${"TIME(s)".padEnd(14)} ${"PID".padEnd(6)} ${"MS".padStart(8)} QUERY\n`,
  text: (data, _o, clock) => {
    const { e, query, seconds, ms } = decodeQuery(data, clock);
    return `${seconds.toFixed(6).padEnd(14)} ${String(e.tid).padEnd(6)} ` +
      `${ms.toFixed(3).padStart(8)} ${escapeText(query)}\n`;
  },
  json: (data, _o, clock) => {
    const { e, query, seconds, ms } = decodeQuery(data, clock);
    const truncated = e.query_len > QUERY_MAX - 1;
    return {
      elapsed: seconds,
      pid: e.pid,
      tid: e.tid,
      ms: Number(ms.toFixed(3)),
      query,
      truncated,
    };
  },
});

if (import.meta.main) await tool.main();
