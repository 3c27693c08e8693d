/**
 * The three runqlat implementations compared side by side, and how to find
 * out whether each one can run on this machine.
 */

/** Keys of the compared tools; the reference keys name the ratio columns. */
export type SubjectKey = "ours" | "libbpf" | "bpftrace";

/** One runqlat implementation, ready to start (or the reason it cannot be). */
export interface Subject {
  key: SubjectKey;
  /** Row label in the tables. */
  label: string;
  /** Command line that starts tracing until SIGINT; empty when unavailable. */
  argv: string[];
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /** Matches the tool's output once it is attached. */
  ready: RegExp;
  /** Why the tool cannot be measured here, when it cannot. */
  missing?: string;
}

/**
 * bpftrace 0.17's packaged runqlat.bt #includes kernel headers, which this
 * kernel lacks; this is the same logic on the sched tracepoints' format
 * fields, as short as the original.
 */
export const BPFTRACE_RUNQLAT = `
BEGIN { printf("Tracing CPU scheduler... Hit Ctrl-C to end.\\n"); }
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
  if (args->prev_state == 0) { @qtime[args->prev_pid] = nsecs; }
  $ns = @qtime[args->next_pid];
  if ($ns) { @usecs = hist((nsecs - $ns) / 1000); }
  delete(@qtime[args->next_pid]);
}
END { clear(@qtime); }
`;

// Anywhere in the output, not only at its start: bpftrace prints
// "Attaching N probes..." first.
const TRACING_LINE = /(^|\n)Tracing /;

/** Finds the three tools; never throws, a missing one gets `missing` set. */
export async function findSubjects(repoRoot: string): Promise<Subject[]> {
  const deno = Deno.execPath();
  const ourScript = `${repoRoot}/tools/runqlat.ts`;
  const ours: Subject = {
    key: "ours",
    label: `ours (Deno ${Deno.version.deno}, tools/runqlat.ts)`,
    argv: [deno, "run", "-A", ourScript],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    ready: TRACING_LINE,
  };
  if (!(await isFile(ourScript))) ours.missing = `${ourScript} not found`;

  const runqlat = (await isFile("/usr/sbin/runqlat"))
    ? "/usr/sbin/runqlat"
    : await which("runqlat");
  const stdbuf = await which("stdbuf");
  const packaged = runqlat
    ? await firstLine(["dpkg-query", "-W", "-f=${Version}", "libbpf-tools"])
    : null;
  const libbpf: Subject = {
    key: "libbpf",
    label: `libbpf-tools ${packaged && /^\d/.test(packaged) ? packaged + " " : ""}runqlat`,
    // It block-buffers stdout into a pipe: without line buffering the
    // "Tracing" line would only appear at exit.
    argv: runqlat ? (stdbuf ? [stdbuf, "-oL", runqlat] : [runqlat]) : [],
    ready: TRACING_LINE,
  };
  if (!runqlat) libbpf.missing = "not installed (apt-get install libbpf-tools)";
  else if (!stdbuf) libbpf.missing = "stdbuf (coreutils) not found: its output is block-buffered";

  const bpftraceBin = await which("bpftrace");
  const version = bpftraceBin ? await firstLine([bpftraceBin, "--version"]) : null;
  const bpftrace: Subject = {
    key: "bpftrace",
    label: `bpftrace ${version ? version.replace(/^bpftrace\s+v?/, "") + " " : ""}(inline runqlat)`,
    argv: bpftraceBin ? [bpftraceBin, "-e", BPFTRACE_RUNQLAT] : [],
    ready: TRACING_LINE,
  };
  if (!bpftraceBin) bpftrace.missing = "not installed (apt-get install bpftrace)";

  return [ours, libbpf, bpftrace];
}

/**
 * Absolute path of `name` on PATH, or null. Deno 2 puts a `node` that is
 * Deno itself (node_compat_bin) first on its PATH; commands that resolve to
 * the running Deno are skipped, so "node" means the real Node.js.
 */
export async function which(name: string): Promise<string | null> {
  const self = await realPath(Deno.execPath());
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    const candidate = `${dir}/${name}`;
    if (!dir || !(await isFile(candidate))) continue;
    if (name !== "deno" && (await realPath(candidate)) === self) continue;
    return candidate;
  }
  return null;
}

async function realPath(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch {
    return null;
  }
}

/** First line a command prints, or null when it cannot run. */
export async function firstLine(argv: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
    const text = new TextDecoder().decode(out.stdout).trim() ||
      new TextDecoder().decode(out.stderr).trim();
    return text.split("\n")[0] || null;
  } catch {
    return null;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
