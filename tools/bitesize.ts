#!/usr/bin/env -S deno run -A
/**
 * bitesize: summarize block device I/O size as a histogram per process (the
 * 2015 "bitehist"): the size of each request when it is issued to the
 * device, in Kbytes, by the name of the process that issued it.
 *
 * Event: block_rq_issue, as a BTF-typed tracepoint (request size from
 * `rq->__data_len`, process name from bpf_get_current_comm). Output and flags
 * follow libbpf-tools bitesize; as there, -c COMM matches names that start
 * with COMM.
 *
 *     # deno run -A tools/bitesize.ts 1 1
 *     Tracing block device I/O... Hit Ctrl-C to end.
 *
 *     Process Name = dd
 *          Kbytes              : count    distribution
 *              0 -> 1          : 0        |                                        |
 *              2 -> 3          : 0        |                                        |
 *              4 -> 7          : 16       |****************************************|
 *              8 -> 15         : 0        |                                        |
 *             16 -> 31         : 0        |                                        |
 *             32 -> 63         : 0        |                                        |
 *             64 -> 127        : 8        |********************                    |
 */
import { histogramTool, intervalPositionals, timestampFlag } from "../lib/cli/drivers/interval.ts";
import type { ListenAddress } from "../lib/export/prometheus_server.ts";
import { nonEmpty, option, wholeDisk } from "../lib/cli/flags.ts";
import { drainHistograms } from "../lib/cli/hist_maps.ts";
import type { Session } from "../lib/cli/session.ts";
import { skipUnlessDisk } from "../lib/dsl/block_request.ts";
import type { Label } from "../lib/dsl/builder.ts";
import { defineHistMap } from "../lib/dsl/hist.ts";
import { type Probe, tpBtf } from "../lib/dsl/program.ts";
import { r1, r10, r2, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { decodeCString, escapeText } from "../lib/format/escape.ts";
import type { BlockDevice } from "../lib/symbols/disks.ts";

const MAX_SLOTS = 20;
const COMM_LEN = 16;

/** What the operator asked for. */
interface Options {
  /** For the driver: -T, and the interval and count positionals. */
  timestamp: boolean;
  interval?: number;
  count?: number;
  /** For the driver: --prometheus (the map then keeps a sum of the bytes). */
  prometheus?: ListenAddress;
  /** -c: the bytes a process name must start with (at most 15, as the kernel keeps). */
  comm?: Uint8Array;
  /** -d: the one disk to trace. */
  disk?: BlockDevice;
}

/** -c COMM: a non-empty name prefix, cut to the 15 bytes the kernel keeps of a name. */
function commPrefix(text: string, flag: string): Uint8Array {
  return new TextEncoder().encode(nonEmpty(text, flag)).slice(0, COMM_LEN - 1);
}

// --- BPF side ---------------------------------------------------------------

/** Histograms by process name: comm[16] -> u32 slots[MAX_SLOTS]. */
const hists = defineHistMap({ name: "hists", slots: MAX_SLOTS, keySize: COMM_LEN });
/** The same with a running sum of the bytes (--prometheus: the exported _sum). */
const histsSum = defineHistMap({ name: "hists", slots: MAX_SLOTS, keySize: COMM_LEN, sum: true });
const histMap = (o: Options) => o.prometheus ? histsSum : hists;

/**
 * Jumps to `skip` unless the name at r10+keyOff starts with `prefix`: two
 * 8-byte words compared under a mask that keeps the prefix's bytes.
 */
function skipUnlessPrefix(p: Probe, keyOff: number, prefix: Uint8Array, skip: Label): void {
  for (let word = 0; word < COMM_LEN / 8; word++) {
    const bytes = prefix.subarray(word * 8, word * 8 + 8);
    if (bytes.length === 0) break;
    let value = 0n, mask = 0n;
    bytes.forEach((b, i) => {
      value |= BigInt(b) << BigInt(8 * i);
      mask |= 0xffn << BigInt(8 * i);
    });
    p.load(r1, "u64", r10, keyOff + 8 * word);
    if (mask !== 0xffff_ffff_ffff_ffffn) p.mov64(r2, mask).and(r1, r2);
    p.mov64(r2, value).jumpIf(r1, "!=", r2, skip);
  }
}

function issueProgram(o: Options): Probe {
  const p = tpBtf("block_rq_issue", { name: "bitesize_issue" });
  const done = p.label();
  p.ctx(r7, "rq");
  if (o.disk) skipUnlessDisk(p, r7, o.disk, done);
  const key = p.stack(COMM_LEN);
  p.stackPtr(r1, key).mov(r2, COMM_LEN).call("get_current_comm");
  if (o.comm) skipUnlessPrefix(p, key, o.comm, done);
  p.field(r8, r7, "request", "__data_len");
  const bytes = o.prometheus ? p.stack(8) : undefined;
  if (bytes !== undefined) p.store("u64", r10, bytes, r8);
  p.div(r8, 1024);
  p.log2(r9, r8, r1).clamp(r9, MAX_SLOTS - 1);
  p.histAdd(histMap(o), key, r9, { zeroOff: p.stack(histMap(o).valueSize), sum: bytes });
  p.bind(done);
  return p.ret(0);
}

// --- user side --------------------------------------------------------------

/** Each process name's histogram (the name's raw bytes, up to the NUL). */
function readHistograms(session: Session, o: Options) {
  const def = histMap(o);
  const histograms = drainHistograms(session.maps.get(def)!, def).map((h) => {
    const nul = h.key.indexOf(0);
    const comm = h.key.slice(0, nul < 0 ? COMM_LEN : nul);
    const heading = `Process Name = ${escapeText(comm)}`;
    const sum = h.sum === undefined ? {} : { sum: h.sum }; // bytes
    return { heading, labels: { comm: decodeCString(comm) }, slots: h.slots, ...sum };
  });
  return { unit: "Kbytes", histograms };
}

export const tool = histogramTool({
  name: "bitesize",
  summary: "Summarize block device I/O size as a histogram.",
  examples: [
    ["bitesize", "summarize block I/O size as a histogram"],
    ["bitesize 1 10", "print 1 second summaries, 10 times"],
    ["bitesize -T 1", "1s summaries with timestamps"],
    ["bitesize -c fio", "trace fio only"],
    ["bitesize -d sdc", "trace sdc only"],
  ],
  flags: {
    timestamp: timestampFlag,
    comm: option("COMM", "trace processes whose name starts with COMM", commPrefix, { short: "c" }),
    disk: option("DISK", "trace this disk only", wholeDisk, { short: "d" }),
  },
  positionals: intervalPositionals,
  // -c: a prefix within the first word, and one that reaches into the second
  variants: [["-c", "deno"], ["-c", "kworker/u4:1-ev"]],
  options: (v): Options => v,
}, {
  banner: () => "Tracing block device I/O... Hit Ctrl-C to end.",
  build: (o) => [issueProgram(o).build()],
  read: readHistograms,
});

if (import.meta.main) await tool.main();
