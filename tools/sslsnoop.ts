#!/usr/bin/env -S deno run -A
/**
 * sslsnoop: OpenSSL calls and their latency, one line per return of
 * SSL_read, SSL_write and SSL_do_handshake (libssl), and of the libcrypto
 * signature and key-exchange functions this libcrypto defines (RSA_sign,
 * RSA_verify; the internal rsa_ossl_*, ossl_ecdsa_*, ossl_ecdh_compute_key
 * where its symbol table has them).
 *
 * Events: a uprobe and a uretprobe on each function (the files found as
 * the dynamic loader would, or given with --libssl/--libcrypto); the entry
 * keeps the time per thread, the return sends the latency and return value.
 * Output follows the bpftrace tool sslsnoop.bt (bcc has none): TIME(us)
 * since tracing began, TID, COMM, LAT(us), RET, FUNC.
 *
 *     # deno run -A tools/sslsnoop.ts
 *     Tracing SSL/TLS handshake... Hit Ctrl-C to end.
 *     TIME(us)   TID      COMM     LAT(us)   RET FUNC
 *     1088279    7003     openssl     2436     1 SSL_do_handshake
 *     1089120    7003     openssl       21    64 SSL_write
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, pidValue, readableFile } from "../lib/cli/flags.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import type { Probe } from "../lib/dsl/program.ts";
import { retval, uprobe } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r7 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import { escapeText } from "../lib/format/escape.ts";
import { monotonicNs } from "../lib/kernel/libc.ts";
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
  "ossl_ecdh_compute_key",
];

/** What the operator asked for. */
interface Options {
  pid?: number;
  libssl: string;
  libcrypto?: string;
}

/** The functions probed, in the order of their index in the events. */
function functions(o: Options): { file: string; name: string }[] {
  const defined = (file: string, names: string[]) => {
    const elf = ElfFile.open(file);
    return names.filter((n) => elf.symbol(n)?.type === "FUNC").map((name) => ({ file, name }));
  };
  const ssl = defined(o.libssl, SSL_FUNCTIONS);
  if (ssl.length === 0) throw new UsageError(`${o.libssl} defines no SSL_read/SSL_write`);
  return [...ssl, ...(o.libcrypto ? defined(o.libcrypto, CRYPTO_FUNCTIONS) : [])];
}

// --- BPF side ---------------------------------------------------------------

/** Call start by thread. */
const starts = defineMap({
  name: "starts",
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 10240,
});

const callEvent = defineSchema("ssl_call", {
  ts_ns: "u64",
  delta_ns: "u64",
  ret: "s64",
  tid: "u32",
  func: "u32",
  comm: char(16),
});

function entryProgram(p: Probe, o: Options): Probe {
  const key = p.stack(4);
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.startTimer(starts, key);
  return p.ret(0);
}

function returnProgram(p: Probe, func: number, ch: EventsDef): Probe {
  const key = p.stack(4), ts = p.stack(8), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.lookup(starts, key).returnIf(r0, "==", 0);
  p.load(r1, "u64", r0, 0).store("u64", r10, ts, r1);
  p.delete(starts, key);
  reserve(p, ch, r7, done);
  p.ktime(r0);
  callEvent.store(p, r7, "ts_ns", r0);
  p.load(r1, "u64", r10, ts).sub(r0, r1);
  callEvent.store(p, r7, "delta_ns", r0);
  retval(p, r0);
  callEvent.store(p, r7, "ret", r0);
  p.call("get_current_pid_tgid");
  callEvent.store(p, r7, "tid", r0);
  callEvent.store(p, r7, "func", func);
  callEvent.currentComm(p, r7, "comm");
  submit(p, ch, r7);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  const pid = o.pid === undefined ? {} : { pid: o.pid };
  return functions(o).flatMap((f, i) => [
    entryProgram(uprobe(f.file, f.name, { ...pid, name: `sslsnoop_e${i}` }), o),
    returnProgram(
      uprobe(f.file, f.name, { ...pid, retprobe: true, name: `sslsnoop_r${i}` }),
      i,
      ch,
    ),
  ]).map((p) => p.build());
}

// --- user side --------------------------------------------------------------

interface State {
  names: string[];
  startNs: bigint;
}

function decode(data: Uint8Array, s: State) {
  const e = callEvent.decode(data);
  // sslsnoop.bt's elapsed: since tracing began; a call may have started before.
  const since = e.ts_ns > s.startNs ? e.ts_ns - s.startNs : 0n;
  return {
    us: Number(since / 1000n),
    tid: e.tid,
    comm: e.comm,
    latUs: Number(e.delta_ns / 1000n),
    ret: Number(BigInt.asIntN(32, e.ret)),
    func: s.names[e.func] ?? String(e.func),
  };
}

export const tool = eventTool({
  name: "sslsnoop",
  summary: "Trace OpenSSL handshakes, reads and writes with latency.",
  examples: [
    ["sslsnoop", "OpenSSL calls of every process"],
    ["sslsnoop -p 181", "only process 181"],
    ["sslsnoop --libssl /opt/lib/libssl.so.3", "another OpenSSL"],
  ],
  flags: {
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    libssl: option("FILE", "the libssl to probe (default: the system's)", readableFile),
    libcrypto: option("FILE", "the libcrypto to probe (default: the system's)", readableFile),
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
    };
  },
}, {
  recordSize: callEvent.size,
  build: buildPrograms,
  prepare: (o): State => ({ names: functions(o).map((f) => f.name), startNs: monotonicNs() }),
  header: () =>
    "Tracing SSL/TLS handshake... Hit Ctrl-C to end.\n" +
    `${"TIME(us)".padEnd(10)} ${"TID".padEnd(8)} ${"COMM".padEnd(8)} ${"LAT(us)".padStart(7)} ` +
    `${"RET".padStart(5)} FUNC\n`,
  text: (data, _o, s) => {
    const e = decode(data, s);
    return `${String(e.us).padEnd(10)} ${String(e.tid).padEnd(8)} ${
      escapeText(e.comm).padEnd(8)
    } ` +
      `${String(e.latUs).padStart(7)} ${String(e.ret).padStart(5)} ${e.func}\n`;
  },
  json: (data, _o, s) => decode(data, s),
});

if (import.meta.main) await tool.main();
