#!/usr/bin/env -S deno run -A
/**
 * Event tools under a storm: our execsnoop and opensnoop against the
 * libbpf-tools ones, one tracer at a time on the same workload, rounds
 * alternating which goes first.
 *
 * - execsnoop: perl forks children that exec /bin/true (4 in flight) for
 *   --exec-seconds; the tracer runs unfiltered, as an operator would.
 * - opensnoop: python opens --opens missing files, paced at --open-rate
 *   per second (0: as fast as it can), so both tracers are compared at the
 *   same workload rate (unpaced, libbpf-tools' wakeup per event slows the
 *   workload ninefold and the two would not be measured on the same work);
 *   the tracer runs with -p of the workload.
 *
 * For each run: the rate the workload reached while traced, events
 * delivered, events reported lost ("Lost N events"), and the tracer's CPU
 * time per delivered event in nanoseconds: the scheduler's own account of
 * every thread (/proc/PID/task/TID/schedstat, user + system), over the
 * storm and one second of draining, not 10 ms ticks. Prints a Markdown
 * table per tool (medians) and one JSON line with every run, also kept in
 * bench/results/. Needs root.
 *
 *     deno run -A bench/snoop.ts [--rounds 3] [--exec-seconds 4] [--opens 400000]
 *       [--open-rate 40000]
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeMachine, machineLine } from "./machine.ts";
import { keepResult } from "./results.ts";
import { median } from "./table.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const PYTHON = "/usr/bin/python3";

const EXEC_STORM = String.raw`
use Time::HiRes qw(time);
$| = 1;
my ($secs) = @ARGV;
<STDIN>;
my ($ok, %kids) = (0);
my $end = time + $secs;
while (time < $end) {
  while (keys %kids < 4) {
    my $p = fork;
    if (!$p) { exec "/bin/true", "storm-marker"; exit 127; }
    $kids{$p} = 1;
  }
  my $p = waitpid(-1, 0);
  delete $kids{$p};
  $ok++ if $? == 0;
}
while (keys %kids) { my $p = waitpid(-1, 0); delete $kids{$p}; $ok++ if $? == 0; }
print "$ok\n";
`;

const OPEN_STORM = String.raw`
import os, sys, time
n, rate = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.readline()
start = time.monotonic()
for i in range(n):
    if rate and i % 100 == 0:
        ahead = start + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    try:
        os.open("/nonexistent/storm-marker-%d" % i, os.O_RDONLY)
    except OSError:
        pass
print(n, flush=True)
`;

type Tool = "execsnoop" | "opensnoop";
type Who = "ours" | "libbpf-tools";

interface Run {
  tool: Tool;
  who: Who;
  round: number;
  events: number;
  seconds: number;
  delivered: number;
  lost: number;
  /** CPU time of the tracer (all threads, user + system) over the run, ns. */
  cpuNs: number;
}

/** Nanoseconds on CPU of every thread of `pid` so far (the first field of schedstat). */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns;
}

/** Counts output lines holding the marker as they stream by; keeps stderr. */
function collect(child: Deno.ChildProcess) {
  let delivered = 0, stderr = "", header = false, carry = "";
  const out = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const text = carry + chunk;
      const cut = text.lastIndexOf("\n");
      carry = text.slice(cut + 1);
      const done = text.slice(0, cut + 1);
      if (!header && /PCOMM|PID +COMM/.test(done)) header = true;
      delivered += done.split("storm-marker").length - 1;
    }
  })();
  const err = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  return {
    ready: () => header,
    finish: async () => {
      await Promise.all([out, err]);
      let lost = 0;
      for (const m of stderr.matchAll(/^Lost (\d+) events/gm)) lost += Number(m[1]);
      return { delivered, lost, stderr };
    },
  };
}

async function oneRun(tool: Tool, who: Who, round: number, o: Options): Promise<Run> {
  const workload = new Deno.Command(tool === "execsnoop" ? "perl" : PYTHON, {
    args: tool === "execsnoop"
      ? ["-e", EXEC_STORM, String(o.execSeconds)]
      : ["-c", OPEN_STORM, String(o.opens), String(o.openRate)],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const filter = tool === "opensnoop" ? ["-p", String(workload.pid)] : [];
  const argv = who === "ours"
    ? [Deno.execPath(), "run", "-A", `${ROOT}/tools/${tool}.ts`, ...filter]
    : ["stdbuf", "-oL", `/usr/sbin/${tool}`, ...filter];
  const tracer = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const seen = collect(tracer);
  try {
    const deadline = Date.now() + 20000;
    while (!seen.ready()) {
      if (Date.now() > deadline) throw new Error(`${who} ${tool} printed no header`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = cpuNs(tracer.pid);
    const t0 = performance.now();
    const w = workload.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const result = await workload.output();
    const seconds = (performance.now() - t0) / 1000;
    const events = Number(new TextDecoder().decode(result.stdout).trim());
    await new Promise((r) => setTimeout(r, 1000)); // let the tracer drain
    const after = cpuNs(tracer.pid);
    tracer.kill("SIGINT");
    const { delivered, lost } = await seen.finish();
    await tracer.status;
    return {
      tool,
      who,
      round,
      events,
      seconds,
      delivered,
      lost,
      cpuNs: after - before,
    };
  } finally {
    try {
      tracer.kill("SIGKILL");
    } catch { /* gone */ }
    try {
      workload.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

interface Options {
  rounds: number;
  execSeconds: number;
  opens: number;
  openRate: number;
}

function table(tool: Tool, runs: Run[], o: Options): string {
  const rows = (["ours", "libbpf-tools"] as Who[]).map((who) => {
    const mine = runs.filter((r) => r.tool === tool && r.who === who);
    const m = (f: (r: Run) => number) => median(mine.map(f)) ?? NaN;
    return {
      who,
      rate: m((r) => r.events / r.seconds),
      delivered: m((r) => r.delivered / r.events),
      lost: m((r) => r.lost),
      cpu: m((r) => r.cpuNs / Math.max(1, r.delivered)),
    };
  });
  const [ours, ref] = rows;
  const lines = [
    `#### ${tool}: ${tool === "execsnoop" ? "exec storm, unfiltered" : "open storm, -p workload"}${
      tool === "opensnoop" && o.openRate ? `, paced at ${o.openRate}/s` : ""
    } (medians of ${runs.filter((r) => r.tool === tool && r.who === "ours").length} runs)`,
    "",
    "| tracer | workload rate (events/s) | delivered | lost | CPU ns/event (user + sys) |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.who} | ${r.rate.toFixed(0)} | ${(r.delivered * 100).toFixed(2)}% | ${
        r.lost.toFixed(0)
      } | ${r.cpu.toFixed(0)} |`
    ),
    `| ratio ours / libbpf-tools | ${(ours.rate / ref.rate).toFixed(2)}× | | | ${
      (ours.cpu / ref.cpu).toFixed(2)
    }× |`,
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      "exec-seconds": { type: "string", default: "4" },
      opens: { type: "string", default: "400000" },
      "open-rate": { type: "string", default: "40000" },
    },
    strict: true,
  });
  const o: Options = {
    rounds: Number(values.rounds),
    execSeconds: Number(values["exec-seconds"]),
    opens: Number(values.opens),
    openRate: Number(values["open-rate"]),
  };
  const runs: Run[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const tool of ["execsnoop", "opensnoop"] as Tool[]) {
      const order: Who[] = round % 2 ? ["ours", "libbpf-tools"] : ["libbpf-tools", "ours"];
      for (const who of order) {
        const r = await oneRun(tool, who, round, o);
        console.error(
          `bench: round ${round} ${tool} ${who}: ${r.events} events in ${
            r.seconds.toFixed(2)
          } s, ${r.delivered} delivered, ${r.lost} lost, CPU ${(r.cpuNs / 1e6).toFixed(1)} ms`,
        );
        runs.push(r);
      }
    }
  }
  const machine = describeMachine();
  console.log(machineLine(machine, [`${o.rounds} rounds`]));
  console.log("");
  console.log(table("execsnoop", runs, o));
  console.log("");
  console.log(table("opensnoop", runs, o));
  console.log("");
  keepResult("snoop", { machine, config: o, runs });
}

await main();
