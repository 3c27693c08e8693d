#!/usr/bin/env -S deno run -A
/**
 * bpftk: one entry for every tool.
 *
 *     # deno run -A bpftk.ts runqlat 10 1     # run a tool
 *     # deno run -A bpftk.ts --list           # every tool, with its summary
 *     # deno run -A bpftk.ts runqlat --help   # a tool's help
 *
 * `deno task compile` makes one multi-call binary of it (dist/bpftk): the
 * tool is the first argument, or, as busybox does, the name the binary was
 * called by (`ln -s bpftk runqlat; ./runqlat 10 1`). Only the tool asked for
 * is loaded, so each starts as fast as its own script.
 *
 * @module
 */
import type { Tool } from "./lib/cli/tool.ts";

/** Every tool, by name, loaded on demand (literal imports, so `deno compile` embeds them). */
export const TOOLS: Record<string, () => Promise<{ tool: Tool<unknown> }>> = {
  bashreadline: () => import("./tools/bashreadline.ts"),
  bindsnoop: () => import("./tools/bindsnoop.ts"),
  biolatency: () => import("./tools/biolatency.ts"),
  biolateness: () => import("./tools/biolateness.ts"),
  biopattern: () => import("./tools/biopattern.ts"),
  biosnoop: () => import("./tools/biosnoop.ts"),
  bitesize: () => import("./tools/bitesize.ts"),
  blkthrot: () => import("./tools/blkthrot.ts"),
  btrfsdist: () => import("./tools/btrfsdist.ts"),
  btrfsslower: () => import("./tools/btrfsslower.ts"),
  cpudist: () => import("./tools/cpudist.ts"),
  drsnoop: () => import("./tools/drsnoop.ts"),
  execsnoop: () => import("./tools/execsnoop.ts"),
  exitsnoop: () => import("./tools/exitsnoop.ts"),
  exporter: () => import("./tools/exporter.ts"),
  ext4dist: () => import("./tools/ext4dist.ts"),
  ext4slower: () => import("./tools/ext4slower.ts"),
  filelife: () => import("./tools/filelife.ts"),
  filetop: () => import("./tools/filetop.ts"),
  flamegraph: () => import("./tools/flamegraph.ts"),
  funccount: () => import("./tools/funccount.ts"),
  funclatency: () => import("./tools/funclatency.ts"),
  gethostlatency: () => import("./tools/gethostlatency.ts"),
  hardirqs: () => import("./tools/hardirqs.ts"),
  killsnoop: () => import("./tools/killsnoop.ts"),
  memleak: () => import("./tools/memleak.ts"),
  mountsnoop: () => import("./tools/mountsnoop.ts"),
  mysqld_qslower: () => import("./tools/mysqld_qslower.ts"),
  naptime: () => import("./tools/naptime.ts"),
  offcputime: () => import("./tools/offcputime.ts"),
  offwaketime: () => import("./tools/offwaketime.ts"),
  oomkill: () => import("./tools/oomkill.ts"),
  opensnoop: () => import("./tools/opensnoop.ts"),
  pidpersec: () => import("./tools/pidpersec.ts"),
  profile: () => import("./tools/profile.ts"),
  readahead: () => import("./tools/readahead.ts"),
  runqlat: () => import("./tools/runqlat.ts"),
  runqlen: () => import("./tools/runqlen.ts"),
  runqslower: () => import("./tools/runqslower.ts"),
  setuids: () => import("./tools/setuids.ts"),
  sigsnoop: () => import("./tools/sigsnoop.ts"),
  softirqs: () => import("./tools/softirqs.ts"),
  solisten: () => import("./tools/solisten.ts"),
  ssllatency: () => import("./tools/ssllatency.ts"),
  sslsnoop: () => import("./tools/sslsnoop.ts"),
  stackcount: () => import("./tools/stackcount.ts"),
  statsnoop: () => import("./tools/statsnoop.ts"),
  syncsnoop: () => import("./tools/syncsnoop.ts"),
  syscount: () => import("./tools/syscount.ts"),
  tcpaccept: () => import("./tools/tcpaccept.ts"),
  tcpconnect: () => import("./tools/tcpconnect.ts"),
  tcpconnlat: () => import("./tools/tcpconnlat.ts"),
  tcpdrop: () => import("./tools/tcpdrop.ts"),
  tcplife: () => import("./tools/tcplife.ts"),
  tcpretrans: () => import("./tools/tcpretrans.ts"),
  tcprtt: () => import("./tools/tcprtt.ts"),
  tcpstates: () => import("./tools/tcpstates.ts"),
  tcpsynbl: () => import("./tools/tcpsynbl.ts"),
  tcptop: () => import("./tools/tcptop.ts"),
  threadsnoop: () => import("./tools/threadsnoop.ts"),
  ugc: () => import("./tools/ugc.ts"),
  vfsstat: () => import("./tools/vfsstat.ts"),
  wakeuptime: () => import("./tools/wakeuptime.ts"),
  workq: () => import("./tools/workq.ts"),
  writeback: () => import("./tools/writeback.ts"),
  xfsdist: () => import("./tools/xfsdist.ts"),
  xfsslower: () => import("./tools/xfsslower.ts"),
  zfsslower: () => import("./tools/zfsslower.ts"),
};

const USAGE = `bpftk: BPF performance tools, one entry for all.

USAGE: bpftk TOOL [ARGS...]
       bpftk --list          every tool, with what it shows
       bpftk TOOL --help     a tool's own help

EXAMPLES:
    bpftk runqlat 10 1                      # run queue latency, one 10 s histogram
    bpftk profile -af -F 49 30 > out.folded # folded CPU stacks for a flame graph
`;

/** The name this process was started by (argv[0]), for busybox-style links. */
function invokedAs(): string {
  try {
    const cmdline = Deno.readTextFileSync("/proc/self/cmdline");
    return cmdline.split("\0")[0].split("/").pop() ?? "";
  } catch {
    return "";
  }
}

/** `name: summary` for every tool, aligned. */
async function list(): Promise<string> {
  const names = Object.keys(TOOLS);
  const width = Math.max(...names.map((n) => n.length));
  const lines = [];
  for (const name of names) {
    const { tool } = await TOOLS[name]();
    lines.push(`${name.padEnd(width)}  ${tool.summary}`);
  }
  return lines.join("\n") + "\n";
}

/** Runs the tool named by argv[0] (the link) or by the first argument. */
export async function main(argv: string[]): Promise<number> {
  const self = invokedAs();
  if (Object.hasOwn(TOOLS, self)) return await (await TOOLS[self]()).tool.main(argv, self);
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help") {
    await Deno.stdout.write(new TextEncoder().encode(USAGE));
    return name === undefined ? 2 : 0;
  }
  if (name === "--list" || name === "-l") {
    await Deno.stdout.write(new TextEncoder().encode(await list()));
    return 0;
  }
  if (!Object.hasOwn(TOOLS, name)) {
    console.error(`bpftk: unknown tool '${name}' (see 'bpftk --list')`);
    return 2;
  }
  return await (await TOOLS[name]()).tool.main(rest, name);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
