#!/usr/bin/env -S deno run -A
/**
 * ssllatency: latency of OpenSSL calls as linear histograms per function
 * (0 to 1000 µs in 200 µs steps), with count, average and total, successful
 * and failed calls apart (SSL_read/SSL_write/SSL_do_handshake returning
 * less than 1 failed; libcrypto calls always count as successful).
 *
 * Events: a uprobe and a uretprobe on SSL_read, SSL_write,
 * SSL_do_handshake (libssl) and the libcrypto RSA/ECDSA/ECDH functions it
 * defines; the return adds the latency to its function's histogram in the
 * kernel. Output follows the bpftrace tool ssllatency.bt (bcc has none),
 * printed at Ctrl-C (or every interval), functions named.
 *
 *     # deno run -A tools/ssllatency.ts
 *     Tracing SSL/TLS handshake... Hit Ctrl-C to end.
 *     ^C
 *     Latency distribution in microsecond:
 *
 *     @hist[SSL_do_handshake]:
 *     [1000, ...)            3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
 *
 *     @stat[SSL_do_handshake]: count 3, average 2830, total 8490
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { type IntervalOptions, intervalTool } from "../lib/cli/drivers/interval.ts";
import { count, option, pidValue, positional, readableFile, seconds } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { retval, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r7, r8 } from "../lib/dsl/registers.ts";
import { formatBpftraceHistMap } from "../lib/format/bpftrace_hist.ts";
import { ElfFile } from "../lib/symbols/elf.ts";
import { findLibrary } from "../lib/symbols/library_path.ts";

const SSL_FUNCTIONS = ["SSL_read", "SSL_write", "SSL_do_handshake"];
const CRYPTO_FUNCTIONS = [
  "rsa_ossl_public_encrypt",
  "rsa_ossl_public_decrypt",
  "rsa_ossl_private_encrypt",
  "rsa_ossl_private_decrypt",
  "RSA_sign",
  "RSA_verify",
  "ossl_ecdsa_sign",
  "ossl_ecdsa_verify",
  "ecdh_simple_compute_key",
];
/** lhist(us, 0, 1000, 200): below 0, five buckets, 1000 and up. */
const MIN = 0, MAX = 1000, STEP = 200, BUCKETS = (MAX - MIN) / STEP + 2;

/** What the operator asked for. */
interface Options extends IntervalOptions {
  pid?: number;
  libssl: string;
  libcrypto?: string;
}

/** The functions probed (index = key), and whether a return below 1 is a failure. */
function functions(o: Options): { file: string; name: string; ssl: boolean }[] {
  const defined = (file: string, names: string[], ssl: boolean) => {
    const elf = ElfFile.open(file);
    return names.filter((n) => elf.symbol(n)?.type === "FUNC").map((name) => ({ file, name, ssl }));
  };
  const ssl = defined(o.libssl, SSL_FUNCTIONS, true);
  if (ssl.length === 0) throw new UsageError(`${o.libssl} defines no SSL_read/SSL_write`);
  return [...ssl, ...(o.libcrypto ? defined(o.libcrypto, CRYPTO_FUNCTIONS, false) : [])];
}

// --- BPF side ---------------------------------------------------------------

const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});
/** Key {u32 function, u32 failed} -> {u64 buckets[7], u64 count, u64 total us}. */
const hists = defineMap({
  name: "hists",
  type: "hash",
  keySize: 8,
  valueSize: 8 * (BUCKETS + 2),
  maxEntries: 64,
});

function entryProgram(p: Probe, o: Options): Probe {
  const key = p.stack(4);
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.startTimer(starts, key);
  return p.ret(0);
}

function returnProgram(p: Probe, func: number, ssl: boolean): Probe {
  const key = p.stack(4), hkey = p.stack(8), zero = p.stack(8 * (BUCKETS + 2)), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.elapsed(r7, starts, key, done);
  p.div(r7, 1000); // µs
  p.store("u32", r10, hkey, func).store("u32", r10, hkey + 4, 0);
  if (ssl) {
    // (int8)retval >= 1 succeeded, as ssllatency.bt tests it
    retval(p, r1).lsh(r1, 56).alu("arsh", r1, 56);
    p.if(r1, "s<", 1, () => p.store("u32", r10, hkey + 4, 1));
  }
  p.mov(r8, r7);
  p.if(r8, ">=", MAX, () => p.mov(r8, BUCKETS - 1), () => p.div(r8, STEP).add(r8, 1));
  p.lookupOrInit(hists, hkey, zero).jumpIf(r0, "==", 0, done);
  p.mov(r1, 1);
  // One constant offset per bucket: atomics at a variable offset are not checked for alignment.
  for (let b = 0; b < BUCKETS; b++) p.if(r8, "==", b, () => p.atomicAdd("u64", r0, 8 * b, r1));
  p.atomicAdd("u64", r0, 8 * BUCKETS, r1).atomicAdd("u64", r0, 8 * (BUCKETS + 1), r7);
  p.bind(done).delete(starts, key);
  return p.ret(0);
}

function buildPrograms(o: Options) {
  const pid = o.pid === undefined ? {} : { pid: o.pid };
  return functions(o).flatMap((f, i) => [
    entryProgram(uprobe(f.file, f.name, { ...pid, name: `ssllat_e${i}` }), o),
    returnProgram(
      uprobe(f.file, f.name, { ...pid, retprobe: true, name: `ssllat_r${i}` }),
      i,
      f.ssl,
    ),
  ]).map((p) => p.build());
}

// --- user side --------------------------------------------------------------

interface FunctionStats {
  func: string;
  failed: boolean;
  buckets: number[];
  count: number;
  totalUs: number;
}

function readStats(session: Session, _o: Options, names: string[]): FunctionStats[] {
  const map = session.maps.get(hists)!;
  const out: FunctionStats[] = [];
  for (const [k, v] of map.entries()) {
    const key = new DataView(k.buffer), d = new DataView(v.buffer);
    const n = (i: number) => Number(d.getBigUint64(8 * i, true));
    out.push({
      func: names[key.getUint32(0, true)] ?? String(key.getUint32(0, true)),
      failed: key.getUint32(4, true) !== 0,
      buckets: Array.from({ length: BUCKETS }, (_, i) => n(i)),
      count: n(BUCKETS),
      totalUs: n(BUCKETS + 1),
    });
    map.delete(k);
  }
  return out;
}

/** ssllatency.bt's maps as bpftrace prints them: @hist, @histF, @stat, @statF. */
function reportText(stats: FunctionStats[]): string {
  const layout = { kind: "lhist", min: MIN, max: MAX, step: STEP } as const;
  let out = "\nLatency distribution in microsecond:\n\n";
  for (const failed of [false, true]) {
    const these = stats.filter((s) => s.failed === failed);
    if (these.length === 0) continue;
    out += formatBpftraceHistMap(
      failed ? "@histF" : "@hist",
      these.map((s) => ({ key: s.func, counts: s.buckets })),
      layout,
    );
  }
  for (const failed of [false, true]) {
    const these = stats.filter((s) => s.failed === failed).sort((a, b) => a.count - b.count);
    for (const s of these) {
      const average = s.count ? Math.floor(s.totalUs / s.count) : 0;
      out += `${failed ? "@statF" : "@stat"}[${s.func}]: count ${s.count}, ` +
        `average ${average}, total ${s.totalUs}\n`;
    }
  }
  return out;
}

export const tool = intervalTool({
  name: "ssllatency",
  summary: "Summarize SSL/TLS call latency as histograms per function.",
  examples: [
    ["ssllatency", "every process's OpenSSL calls, at Ctrl-C"],
    ["ssllatency -p 181 5", "process 181, every 5 seconds"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    libssl: option("FILE", "the libssl to probe (default: the system's)", readableFile),
    libcrypto: option("FILE", "the libcrypto to probe (default: the system's)", readableFile),
  },
  positionals: {
    interval: positional("interval", "output interval, in seconds", seconds),
    count: positional("count", "number of outputs", count),
  },
  variants: [["-p", "1"]],
  options: (v): Options => {
    const libssl = v.libssl ?? findLibrary("ssl");
    if (libssl === undefined) throw new UsageError("no libssl found: give it with --libssl");
    const libcrypto = v.libcrypto ?? findLibrary("crypto");
    return {
      libssl,
      ...(libcrypto === undefined ? {} : { libcrypto }),
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(v.interval === undefined ? {} : { interval: v.interval }),
      ...(v.count === undefined ? {} : { count: v.count }),
    };
  },
}, {
  banner: () => "Tracing SSL/TLS handshake... Hit Ctrl-C to end.",
  prepare: (o) => functions(o).map((f) => f.name),
  build: buildPrograms,
  ownHeading: true,
  read: readStats,
  text: reportText,
  json: (stats) => ({
    functions: stats.map((s) => ({
      func: s.func,
      failed: s.failed,
      count: s.count,
      totalUs: s.totalUs,
      buckets: s.buckets.map((c, i) => ({
        low: i === 0 ? null : MIN + (i - 1) * STEP,
        high: i === BUCKETS - 1 ? null : MIN + i * STEP - 1,
        count: c,
      })).filter((b) => b.count > 0),
    })),
  }),
});

if (import.meta.main) await tool.main();
