/**
 * The end-of-run report of the stack tools (profile, offcputime): each
 * counted (process, user stack, kernel stack) printed as bcc prints it,
 * either as multi-line stacks with their count or as folded lines for flame
 * graphs, least frequent first.
 *
 *     multi-line (default):                folded (-f):
 *         do_syscall_64                    app;main;work;[unknown];do_syscall_64 9
 *         --                (with -d)
 *         work
 *         main
 *         -                app (1234)
 *             9
 *
 * @module
 */
import { foldedFrame, formatFoldedLine } from "../format/folded.ts";
import { escapeText } from "../format/escape.ts";
import { type Kallsyms, kernelSymbols } from "../symbols/kallsyms.ts";
import { UNKNOWN, UserSymbolizer } from "../symbols/user.ts";
import { isStackError, type StackTraces } from "./stack_maps.ts";
import type { StopSignal } from "./stop.ts";

/**
 * Waits until the operator stops the tool or `seconds` pass (forever when
 * undefined), calling `tick` about every `everyMs` meanwhile (the tools use
 * it to remember the processes seen so far, in case they exit).
 */
export async function waitWhileSampling(
  stop: StopSignal,
  seconds: number | undefined,
  tick: () => void,
  everyMs = 1000,
): Promise<void> {
  const end = seconds === undefined ? Infinity : performance.now() + seconds * 1000;
  while (!stop.stopped) {
    const left = end - performance.now();
    if (left <= 0) return;
    await stop.sleep(Math.min(everyMs, left));
    tick();
  }
}

/** One counted stack, as a tool's counts map holds it. */
export interface StackCount {
  /** The process whose address space the user stack belongs to (TGID). */
  pid: number;
  /** The ID printed after the command name (bcc: TGID for profile, TID for offcputime). */
  shownId: number;
  /** Command name of the task the stack was taken in. */
  comm: string;
  /** Stack ids as the program stored them: >= 0, or a negative errno. */
  userStackId: number;
  /** Kernel stack id, or a negative errno, like userStackId. */
  kernelStackId: number;
  /** Samples, or microseconds off CPU. */
  value: number;
  /** A second name shown with the stack, when the tool has one (wakeuptime: the waker). */
  label?: string;
}

/** How to print. */
export interface StackReportOptions {
  /** Show user stacks (false with -K). */
  user: boolean;
  /** Show kernel stacks (false with -U). */
  kernel: boolean;
  /** -d: "--" (multi-line) or "-" (folded) between kernel and user frames. */
  delimiter: boolean;
  /** -a: "_[k]" after kernel frame names. */
  annotate: boolean;
  /** -f: one folded line per stack (flamegraph.pl input) instead of bcc's multi-line form. */
  folded: boolean;
  /**
   * Leading (innermost) kernel frames to drop while this says so: the
   * tracing machinery between the event and the BPF program.
   */
  dropKernelFrame?: (name: string) => boolean;
}

/** Symbol names for stacks, each address resolved once. */
export class StackSymbols {
  /** Resolves user addresses; each process is read once and kept. */
  readonly user = new UserSymbolizer();
  #kallsyms?: Kallsyms;
  readonly #kernelNames = new Map<bigint, string>();

  /**
   * Reads the address space of each new process in `pids` now, so its user
   * stacks can be named at the end even if it has exited by then (the maps
   * of a process vanish with it; its files usually stay).
   */
  remember(pids: Iterable<number>): void {
    for (const pid of pids) if (pid > 0) this.user.process(pid);
  }

  /** Kernel frame names, innermost first. */
  kernel(addrs: bigint[]): string[] {
    return addrs.map((a) => {
      let name = this.#kernelNames.get(a);
      if (name === undefined) {
        this.#kallsyms ??= kernelSymbols();
        name = this.#kallsyms.resolve(a)?.name ?? UNKNOWN;
        this.#kernelNames.set(a, name);
      }
      return name;
    });
  }

  /** User frame names in process `pid`, innermost first. */
  userFrames(pid: number, addrs: bigint[]): string[] {
    const proc = this.user.process(pid);
    return addrs.map((a) => proc.nameOf(a));
  }
}

/** A stack ready to print: names innermost first, or "missed" when the kernel lost it. */
export interface SymbolizedStack {
  /** The process whose address space the user frames were named in. */
  pid: number;
  /** The ID printed after the command name (see StackCount.shownId). */
  shownId: number;
  /** Command name of the task. */
  comm: string;
  /** Samples or microseconds, summed over merged stacks. */
  value: number;
  /** Undefined when not shown (or there was none). */
  kernel?: string[] | "missed";
  /** User frames; undefined when not shown (or there was none). */
  user?: string[] | "missed";
  /** See StackCount.label. */
  label?: string;
}

/**
 * Looks up and names the stacks of every entry, least frequent first (bcc's
 * order). Entries whose stacks differ only in addresses within the same
 * functions become one (their values added), so each printed stack is unique.
 */
export function symbolizeStacks(
  entries: StackCount[],
  traces: StackTraces,
  syms: StackSymbols,
  opts: StackReportOptions,
): SymbolizedStack[] {
  const merged = new Map<string, SymbolizedStack>();
  for (const e of entries) {
    const s = symbolize(e, traces, syms, opts);
    const key = JSON.stringify([s.pid, s.shownId, s.comm, s.label, s.kernel, s.user]);
    const seen = merged.get(key);
    if (seen) seen.value += s.value;
    else merged.set(key, s);
  }
  return [...merged.values()].sort((a, b) => a.value - b.value);
}

function symbolize(
  e: StackCount,
  traces: StackTraces,
  syms: StackSymbols,
  opts: StackReportOptions,
): SymbolizedStack {
  const s: SymbolizedStack = { pid: e.pid, shownId: e.shownId, comm: e.comm, value: e.value };
  if (e.label !== undefined) s.label = e.label;
  if (opts.kernel) {
    if (isStackError(e.kernelStackId)) s.kernel = "missed";
    else if (e.kernelStackId >= 0) {
      const names = syms.kernel(traces.get(e.kernelStackId));
      let skip = 0;
      while (opts.dropKernelFrame && skip < names.length && opts.dropKernelFrame(names[skip])) {
        skip++;
      }
      s.kernel = names.slice(skip);
    }
  }
  if (opts.user) {
    if (isStackError(e.userStackId)) s.user = "missed";
    else if (e.userStackId >= 0) s.user = syms.userFrames(e.pid, traces.get(e.userStackId));
  }
  return s;
}

/** The report text: multi-line stacks or folded lines. */
export function formatStackReport(stacks: SymbolizedStack[], opts: StackReportOptions): string {
  return opts.folded ? formatFolded(stacks, opts) : formatMultiLine(stacks, opts);
}

/** Folded lines, one per unique line (processes of the same name fold together). */
function formatFolded(stacks: SymbolizedStack[], opts: StackReportOptions): string {
  const kname = (n: string) => opts.annotate ? `${n}_[k]` : n;
  const counts = new Map<string, number>();
  for (const s of stacks) {
    const frames = [s.comm];
    if (opts.user) {
      if (s.user === "missed") frames.push("[Missed User Stack]");
      else if (s.user) frames.push(...s.user.toReversed());
    }
    if (opts.kernel) {
      if (opts.delimiter && bothStacks(s)) frames.push("-");
      if (s.kernel === "missed") frames.push("[Missed Kernel Stack]");
      else if (s.kernel) frames.push(...s.kernel.toReversed().map(kname));
    }
    const line = frames.map(foldedFrame).join(";");
    counts.set(line, (counts.get(line) ?? 0) + s.value);
  }
  const lines = [...counts].sort((a, b) => a[1] - b[1]);
  return lines.map(([stack, count]) => formatFoldedLine([stack], count) + "\n").join("");
}

function bothStacks(s: SymbolizedStack): boolean {
  return Array.isArray(s.kernel) && s.kernel.length > 0 && Array.isArray(s.user) &&
    s.user.length > 0;
}

function formatMultiLine(stacks: SymbolizedStack[], opts: StackReportOptions): string {
  const kname = (n: string) => opts.annotate ? `${n}_[k]` : n;
  const lines: string[] = [];
  for (const s of stacks) {
    if (opts.kernel) {
      if (s.kernel === "missed") lines.push("    [Missed Kernel Stack]");
      else if (s.kernel) lines.push(...s.kernel.map((n) => `    ${escapeText(kname(n))}`));
    }
    if (opts.user) {
      if (opts.delimiter && bothStacks(s)) lines.push("    --");
      if (s.user === "missed") lines.push("    [Missed User Stack]");
      else if (s.user) lines.push(...s.user.map((n) => `    ${escapeText(n)}`));
    }
    lines.push(`    ${"-".padEnd(16)} ${escapeText(s.comm)} (${s.shownId})`);
    lines.push(`        ${s.value}`, "");
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** The report as one JSON-ready object per stack (frames innermost first, as the text). */
export function stackReportJson(stacks: SymbolizedStack[]): Record<string, unknown>[] {
  return stacks.map((s) => ({
    pid: s.pid,
    id: s.shownId,
    comm: s.comm,
    ...(s.label === undefined ? {} : { label: s.label }),
    ...(s.kernel === undefined ? {} : { kernel: s.kernel === "missed" ? null : s.kernel }),
    ...(s.user === undefined ? {} : { user: s.user === "missed" ? null : s.user }),
    value: s.value,
  }));
}
