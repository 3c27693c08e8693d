#!/usr/bin/env -S deno run -A
/**
 * funccount: count calls of functions, tracepoints and USDT probes matching
 * a pattern, per function, every interval or once at the end.
 *
 * Events: one program per place matched, each adding one to its own slot of
 * a per-CPU array: a uprobe on each function of a library or program
 * (`c:str*`, `/path/bin:read*`; `*` and `?` over its ELF symbols, or -r
 * regular expressions), a tracepoint (`t:syscalls:sys_enter_*`), a uprobe
 * on each site of a USDT probe (`u:LIB:PROBE`; one with a semaphore needs
 * -p PID, where it is raised while tracing). Kernel functions (`vfs_*`)
 * need kprobes, which this tool says in one line where the kernel lacks them.
 * At most 1000 places. Output and flags follow bcc funccount (libbpf-tools
 * has none): rows sorted by count, functions never called left out.
 *
 *     # deno run -A tools/funccount.ts 'c:str*'
 *     Tracing 91 functions for "c:str*"... Hit Ctrl-C to end.
 *     ^C
 *     FUNC                                    COUNT
 *     strerror_r                                  2
 *     strtol                                     38
 *     Detaching...
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { type IntervalOptions, intervalTool } from "../lib/cli/drivers/interval.ts";
import { flag, integer, option, pidValue, positional } from "../lib/cli/flags.ts";
import {
  expandTracepoints,
  expandUprobe,
  expandUsdt,
  isPattern,
  parseTarget,
} from "../lib/cli/probe_target.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { kprobe } from "../lib/dsl/kprobe.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { ProbeTargetError, uprobe } from "../lib/dsl/pt_regs.ts";
import { r10 } from "../lib/dsl/registers.ts";
import { addToUsdtSemaphore } from "../lib/kernel/process_memory.ts";
import { escapeText } from "../lib/format/escape.ts";
import { ElfFile } from "../lib/symbols/elf.ts";

/** Places one run may probe (as bcc). */
const MAX_SITES = 1000;

/** One place probed, and the name its count is shown under. */
type Site =
  | { label: string; kind: "uprobe"; binary: string; offset: number; semaphore?: number }
  | { label: string; kind: "tracepoint"; category: string; event: string }
  | { label: string; kind: "kprobe"; func: string };

/** What the operator asked for. */
interface Options extends IntervalOptions {
  pattern: string;
  sites: Site[];
  pid?: number;
}

/** The places a pattern names. */
function expand(pattern: string, regexp: boolean, pid?: number): Site[] {
  const t = parseTarget(pattern, { tracepoints: true, usdt: true, wildcards: true, regexp }, pid);
  switch (t.kind) {
    case "kprobe":
      if (isPattern(t.func, regexp)) {
        throw new ProbeTargetError(
          `'${pattern}': kernel function patterns need kprobes (and their function list)`,
        );
      }
      return [{ label: t.func, kind: "kprobe", func: t.func }];
    case "uprobe": {
      const elf = ElfFile.open(t.binary);
      return expandUprobe(t, MAX_SITES, regexp).map((s) => {
        const offset = elf.vaddrToFileOffset(s.value);
        if (offset === undefined) {
          throw new ProbeTargetError(`${t.binary}: '${s.name}' is in no loaded segment`);
        }
        return { label: s.name, kind: "uprobe", binary: t.binary, offset };
      });
    }
    case "tracepoint":
      return expandTracepoints(t, MAX_SITES, regexp).map((tp) => ({
        label: `${tp.category}:${tp.event}`,
        kind: "tracepoint",
        ...tp,
      }));
    case "usdt":
      return expandUsdt(t, MAX_SITES, regexp).map((n) => {
        if (n.semaphore && pid === undefined) {
          throw new ProbeTargetError(
            `USDT probe ${n.provider}:${n.name} has a semaphore: give the process with -p PID`,
          );
        }
        return {
          label: n.name,
          kind: "uprobe",
          binary: t.binary,
          offset: n.fileOffset,
          ...(n.semaphore ? { semaphore: n.semaphore } : {}),
        };
      });
  }
}

// --- BPF side ---------------------------------------------------------------

/** Calls by place (the array index is the site's). */
const counts = defineMap({
  name: "counts",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: MAX_SITES,
});

function countProgram(p: Probe, index: number, pid?: number): Probe {
  const key = p.stack(4);
  if (pid !== undefined) p.filterCurrentTgid(pid);
  p.store("u32", r10, key, index).counterAdd(counts, key, 1);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  return o.sites.map((s, i) => {
    const name = `fcount_${i}`;
    const pid = o.pid === undefined ? {} : { pid: o.pid };
    const p = s.kind === "uprobe"
      ? uprobe(s.binary, s.offset, { name, ...pid })
      : s.kind === "tracepoint"
      ? tracepoint(s.category, s.event, { name })
      : kprobe(s.func, { name });
    return countProgram(p, i, o.pid).build();
  });
}

// --- user side --------------------------------------------------------------

/** Raises the semaphores of the USDT probes matched (they fire only while non-zero). */
function raiseSemaphores(o: Options): Disposable {
  const raised: number[] = [];
  const lower = {
    [Symbol.dispose]() {
      for (const address of raised.splice(0)) {
        try {
          addToUsdtSemaphore(o.pid!, address, -1);
        } catch { /* the process has exited */ }
      }
    },
  };
  try {
    for (const s of o.sites) {
      if (s.kind !== "uprobe" || !s.semaphore) continue;
      const address = runtimeAddress(o.pid!, s.binary, s.semaphore);
      if (raised.includes(address)) continue;
      addToUsdtSemaphore(o.pid!, address, 1);
      raised.push(address);
    }
  } catch (e) {
    lower[Symbol.dispose]();
    throw e;
  }
  return lower;
}

/** Where a file virtual address of `binary` is in process `pid`. */
function runtimeAddress(pid: number, binary: string, vaddr: number): number {
  const elf = ElfFile.open(binary);
  const ino = Deno.statSync(binary).ino;
  for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || Number(f[4]) !== ino) continue;
    return elf.loadBias(parseInt(f[0].split("-")[0], 16), parseInt(f[2], 16)) + vaddr;
  }
  throw new ProbeTargetError(`PID ${pid} does not map ${binary}`);
}

/** Counts by label (sites sharing a name add up), read and cleared. */
function readCounts(session: Session, o: Options): { func: string; count: number }[] {
  const map = session.maps.get(counts)!;
  const byLabel = new Map<string, number>();
  const zero = new Uint8Array(map.valueBytes);
  o.sites.forEach((s, i) => {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    const value = map.lookup(key);
    let n = 0;
    if (value) {
      const v = new DataView(value.buffer);
      for (let off = 0; off < value.length; off += 8) n += Number(v.getBigUint64(off, true));
      map.update(key, zero);
    }
    byLabel.set(s.label, (byLabel.get(s.label) ?? 0) + n);
  });
  return [...byLabel].filter(([, n]) => n > 0).sort((a, b) => a[1] - b[1])
    .map(([func, count]) => ({ func, count }));
}

export const tool = intervalTool({
  name: "funccount",
  summary: "Count functions, tracepoints, and USDT probes.",
  examples: [
    ["funccount c:malloc", "count all malloc() calls in libc"],
    ["funccount 'c:str*'", "count libc functions starting with str"],
    ["funccount -r 'c:^str(n?cpy|len)$'", "the same with a regular expression"],
    ["funccount -Ti 5 'c:mem*'", "every 5 seconds, with timestamps"],
    ["funccount -d 10 'c:mem*'", "trace for 10 seconds only"],
    ["funccount -p 185 'c:mem*'", "count calls in PID 185 only"],
    ["funccount t:sched:sched_fork", "count the sched_fork tracepoint"],
    ["funccount -p 185 'u:node:gc*'", "GC USDT probes in node, PID 185"],
    ["funccount './test:read*'", "count read* calls in the ./test binary"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    interval: option("SECS", "summary interval, seconds", integer(1, 99_999_999, "interval"), {
      short: "i",
    }),
    duration: option(
      "SECS",
      "total duration of trace, seconds",
      integer(1, 99_999_999, "duration"),
      { short: "d" },
    ),
    timestamp: flag("include timestamp on output", "T"),
    regexp: flag('regular expressions (default: "*" wildcards)', "r"),
  },
  positionals: {
    pattern: positional("pattern", "search expression for events", (text) => text),
  },
  needsArguments: true,
  variants: [["c:malloc"], ["-p", "1", "c:malloc"], ["t:sched:sched_switch"]],
  options: (v): Options => {
    if (v.pattern === undefined) throw new UsageError("needs a pattern: what to count");
    if (
      v.pattern.split(":")[0] === "" && v.pattern.split(":").length === 2 && v.pid === undefined
    ) {
      throw new UsageError(`'${v.pattern}': ':FUNC' needs -p PID (its executable)`);
    }
    const sites = expand(v.pattern, v.regexp, v.pid);
    const interval = v.interval ?? v.duration;
    const count = v.duration === undefined ? undefined : Math.ceil(v.duration / interval!);
    return {
      pattern: v.pattern,
      sites,
      timestamp: v.timestamp,
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(interval === undefined ? {} : { interval }),
      ...(count === undefined ? {} : { count }),
    };
  },
}, {
  banner: (o) => `Tracing ${o.sites.length} functions for "${o.pattern}"... Hit Ctrl-C to end.`,
  footer: () => "Detaching...",
  build: buildPrograms,
  started: (_session, o) => raiseSemaphores(o),
  read: readCounts,
  text: (rows) =>
    `${"FUNC".padEnd(36)} ${"COUNT".padStart(8)}\n` +
    rows.map((r) => `${escapeText(r.func).padEnd(36)} ${String(r.count).padStart(8)}\n`).join(""),
  json: (rows) => ({ functions: rows }),
});

if (import.meta.main) await tool.main();
