#!/usr/bin/env -S deno run -A
/**
 * pidpersec: count new processes (and threads: every fork or clone) and
 * print the rate once per second.
 *
 * Events: sched:sched_process_fork, counted in a per-CPU counter that is
 * never reset (each interval prints the growth, so no fork falls between a
 * read and a reset). Output follows bcc pidpersec (libbpf-tools has none);
 * the optional interval and count are this tool's own.
 *
 *     # deno run -A tools/pidpersec.ts
 *     Tracing... Ctrl-C to end.
 *     22:49:20: PIDs/sec: 5
 *     22:49:21: PIDs/sec: 212
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { intervalPositionals, intervalTool } from "../lib/cli/drivers/interval.ts";
import type { Session } from "../lib/cli/session.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { tracepoint } from "../lib/dsl/program.ts";
import { r10 } from "../lib/dsl/registers.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";

/** Forks since the program was attached, per CPU. */
const forks = defineMap({
  name: "pidpersec_cnt",
  type: "percpu_array",
  keySize: 4,
  valueSize: 8,
  maxEntries: 1,
});

function buildPrograms() {
  const p = tracepoint("sched", "sched_process_fork", { name: "pidpersec" });
  const key = p.stack(4);
  p.store("u32", r10, key, 0).counterAdd(forks, key, 1);
  return [p.ret(0).build()];
}

/** The total over the CPUs. */
function readTotal(session: Session): bigint {
  const value = session.maps.get(forks)!.lookup(new Uint8Array(4));
  if (!value) return 0n;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  let total = 0n;
  for (let off = 0; off + 8 <= value.byteLength; off += 8) total += view.getBigUint64(off, true);
  return total;
}

/** The last total read. */
interface Last {
  total: bigint;
}

export const tool = intervalTool({
  name: "pidpersec",
  summary: "Count new processes (via fork) per second.",
  examples: [
    ["pidpersec", "new processes per second, until Ctrl-C"],
    ["pidpersec 1 10", "ten one-second lines"],
  ],
  flags: {},
  positionals: intervalPositionals,
  options: (v) => ({ ...v, interval: v.interval ?? 1 }),
}, {
  banner: () => "Tracing... Ctrl-C to end.",
  build: buildPrograms,
  prepare: (): Last => ({ total: 0n }),
  started: (session, _o, _json, last) => void (last.total = readTotal(session)),
  read: (session, o, last) => {
    const total = readTotal(session);
    const forked = total - last.total;
    last.total = total;
    return { forked: Number(forked), perSecond: Number(forked / BigInt(o.interval)) };
  },
  text: (r) => `${formatTimeOfDay(new Date())}: PIDs/sec: ${r.perSecond}\n`,
  json: (r, o) => ({ interval: o.interval, forks: r.forked, pidsPerSec: r.perSecond }),
  // Ctrl-C: a partial interval has no per-second rate (as bcc)
  skipPartial: true,
  ownHeading: true,
});

if (import.meta.main) await tool.main();
