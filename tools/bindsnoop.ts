#!/usr/bin/env -S deno run -A
/**
 * bindsnoop: bind() calls on IPv4 and IPv6 sockets, one line each with the
 * process, the result, the protocol, the socket options that change what a
 * bind may do, the bound device, and the port and address asked for.
 *
 * Events. libbpf-tools bindsnoop uses a kprobe and a kretprobe on
 * inet_bind/inet6_bind; this kernel has no kprobes. The same call is at
 * syscalls:sys_enter_bind (the fd and the user's sockaddr pointer, kept per
 * thread) and syscalls:sys_exit_bind (the result): there the socket is
 * current->files->fdt->fd[fd]->private_data->sk (lib/dsl/socket_fd.ts), and
 * the sockaddr is read from the caller's memory (AF_INET: 16 bytes,
 * AF_INET6: 28, by the socket's family). Only AF_INET/AF_INET6 sockets are
 * shown, as inet_bind/inet6_bind see only those. Binds that fail before
 * reaching a socket (EBADF, ENOTSOCK) are not shown. OPTS as libbpf-tools:
 * F IP_FREEBIND, T IP_TRANSPARENT, N IP_BIND_ADDRESS_NO_PORT (inet_flags
 * bits, numbered from this kernel's BTF), R SO_REUSEADDR, r SO_REUSEPORT
 * (sk_reuse, sk_reuseport); read after the bind.
 *
 * Output as libbpf-tools bindsnoop (-t adds the time of day, under
 * libbpf-tools' TIME(s) heading); failed binds only with -x; -P filters on
 * the port asked for; --json one object per bind.
 *
 *     # deno run -A tools/bindsnoop.ts
 *     PID     COMM             RET PROTO OPTS  IF   PORT  ADDR
 *     3941081 test_bind_op     0   TCP   F.N..  0   53    127.0.0.1
 *     3940660 python3          0   UDP   ...R.  0   8080  ::
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { flag, option, pidValue } from "../lib/cli/flags.ts";
import { portList } from "../lib/cli/ports.ts";
import { Btf } from "../lib/btf/mod.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { bytes, char, defineSchema } from "../lib/dsl/schema.ts";
import { currentSocketOfFd } from "../lib/dsl/socket_fd.ts";
import { escapeText } from "../lib/format/escape.ts";
import { AF_INET, AF_INET6, formatInetAddress } from "../lib/format/inet.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const EBADF = 9, ENOTSOCK = 88;
const IPPROTO_TCP = 6, IPPROTO_UDP = 17;

/** What the operator asked for. */
interface Options {
  timestamp: boolean;
  failed: boolean;
  pid?: number;
  ports?: number[];
}

// --- BPF side ---------------------------------------------------------------

/** What sys_enter_bind saw, by thread. */
const bindArgs = defineSchema("bind_args", { fd: "u64", addr: "u64" });
const pending = defineMap({
  name: "binds",
  type: "hash",
  keySize: 4,
  valueSize: bindArgs.size,
  maxEntries: 10240,
});

/** One bind, as sent to user space. */
const bindEvent = defineSchema("bind_event", {
  inet_flags: "u64",
  comm: char(16),
  /** The caller's sockaddr_in / sockaddr_in6. */
  sockaddr: bytes(28),
  pid: "u32",
  ret: "s32",
  bound_dev_if: "u32",
  family: "u16",
  protocol: "u16",
  /** The byte that holds sk_reuse and sk_reuseport. */
  reuse: "u8",
});

function enterProgram(o: Options): Probe {
  const p = tracepoint("syscalls", "sys_enter_bind", { name: "bindsnoop_ent" });
  const tid = p.stack(4), args = p.stack(bindArgs.size);
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);
  p.ctx(r1, "fd").store("u64", r10, args + bindArgs.offset("fd"), r1);
  p.ctx(r1, "umyaddr").store("u64", r10, args + bindArgs.offset("addr"), r1);
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.update(pending, tid, args);
  return p.ret(0);
}

function exitProgram(o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", "sys_exit_bind", { name: "bindsnoop_exit" });
  const tid = p.stack(4), addr = p.stack(8), done = p.label();
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(pending, tid).jumpIf(r0, "==", 0, done);
  bindArgs.load(p, r9, r0, "fd"); // r9: the fd
  bindArgs.load(p, r1, r0, "addr");
  p.store("u64", r10, addr, r1);
  p.delete(pending, tid);
  p.ctx(r7, "ret"); // r7: the result
  p.jumpIf(r7, "==", -EBADF, done).jumpIf(r7, "==", -ENOTSOCK, done);
  if (!o.failed) p.jumpIf(r7, "!=", 0, done);
  currentSocketOfFd(p, r8, r9, done); // r8: the sock
  p.field(r9, r8, "sock", "__sk_common.skc_family"); // r9: the family
  p.if(r9, "!=", AF_INET, () => p.jumpIf(r9, "!=", AF_INET6, done));
  const sockRead = p.stack(8);
  p.store("u64", r10, sockRead, r8);
  reserve(p, ch, r8, done); // r8: the record
  bindEvent.store(p, r8, "ret", r7);
  bindEvent.store(p, r8, "family", r9);
  p.load(r7, "u64", r10, sockRead); // r7: the sock
  p.field(r1, r7, "sock", "sk_protocol");
  bindEvent.store(p, r8, "protocol", r1);
  p.field(r1, r7, "sock", "__sk_common.skc_bound_dev_if");
  bindEvent.store(p, r8, "bound_dev_if", r1);
  p.field(r1, r7, "sock", "__sk_common.skc_reuse"); // the whole byte (a bitfield's unit)
  bindEvent.store(p, r8, "reuse", r1);
  p.mov(r3, r7).add(r3, p.layouts.structField("inet_sock", "inet_flags").offset);
  bindEvent.fieldPtr(p, r1, r8, "inet_flags");
  p.mov(r2, 8).call("probe_read_kernel");
  p.call("get_current_pid_tgid").rsh(r0, 32);
  bindEvent.store(p, r8, "pid", r0);
  bindEvent.currentComm(p, r8, "comm");
  // the caller's sockaddr: as long as the socket's family needs
  p.load(r3, "u64", r10, addr);
  bindEvent.fieldPtr(p, r1, r8, "sockaddr");
  p.mov(r2, 16);
  p.if(r9, "==", AF_INET6, () => p.mov(r2, 28));
  p.call("probe_read_user");
  submit(p, ch, r8);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [enterProgram(o), exitProgram(o, ch)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** Bit numbers of inet_flags, from this kernel's BTF (an anonymous enum). */
function inetFlagBits(): { freebind: number; transparent: number; noPort: number } {
  const btf = Btf.vmlinux();
  const want = ["INET_FLAGS_FREEBIND", "INET_FLAGS_TRANSPARENT", "INET_FLAGS_BIND_ADDRESS_NO_PORT"];
  for (let id = 1;; id++) {
    let t: { values?: { name: string; value: number }[] };
    try {
      t = btf.type(id) as typeof t;
    } catch {
      break;
    }
    const values = t.values;
    if (!values?.some((v) => v.name === want[0])) continue;
    const bit = (name: string) => values.find((v) => v.name === name)?.value ?? -1;
    return { freebind: bit(want[0]), transparent: bit(want[1]), noPort: bit(want[2]) };
  }
  return { freebind: -1, transparent: -1, noPort: -1 };
}

/** What the formatter keeps: the option bit layout of this kernel. */
class State {
  readonly bits = inetFlagBits();
  readonly reuse = (() => {
    const btf = Btf.vmlinux();
    const reuse = btf.field("sock", "__sk_common.skc_reuse");
    const reuseport = btf.field("sock", "__sk_common.skc_reuseport");
    return {
      reuse: { shift: reuse.bitOffset ?? 0, mask: (1 << (reuse.bitSize ?? 8)) - 1 },
      reuseport: { shift: reuseport.bitOffset ?? 0, mask: (1 << (reuseport.bitSize ?? 8)) - 1 },
    };
  })();
}

/** One bind as the user side sees it. */
function decodeBind(data: Uint8Array, state: State) {
  const e = bindEvent.decode(data);
  const sa = new DataView(e.sockaddr.buffer, e.sockaddr.byteOffset, e.sockaddr.byteLength);
  const port = sa.getUint16(2, false);
  const addr = e.family === AF_INET6
    ? formatInetAddress(AF_INET6, e.sockaddr.subarray(8, 24))
    : formatInetAddress(AF_INET, e.sockaddr.subarray(4, 8));
  const bit = (n: number) => n >= 0 && ((e.inet_flags >> BigInt(n)) & 1n) === 1n;
  const { reuse, reuseport } = state.reuse;
  const opts = [
    bit(state.bits.freebind) ? "F" : ".",
    bit(state.bits.transparent) ? "T" : ".",
    bit(state.bits.noPort) ? "N" : ".",
    (e.reuse >> reuse.shift) & reuse.mask ? "R" : ".",
    (e.reuse >> reuseport.shift) & reuseport.mask ? "r" : ".",
  ].join("");
  const proto = e.protocol === IPPROTO_TCP ? "TCP" : e.protocol === IPPROTO_UDP ? "UDP" : "UNK";
  return { pid: e.pid, comm: e.comm, ret: e.ret, proto, opts, if: e.bound_dev_if, port, addr };
}

function header(o: Options): string {
  return (o.timestamp ? "TIME(s)".padEnd(8) + " " : "") +
    `${"PID".padEnd(7)} ${"COMM".padEnd(16)} RET PROTO OPTS  IF   PORT  ${"ADDR".padEnd(48)}\n`;
}

function formatLine(data: Uint8Array, o: Options, state: State): string | undefined {
  const b = decodeBind(data, state);
  if (o.ports && !o.ports.includes(b.port)) return undefined;
  return (o.timestamp ? formatTimeOfDay(new Date()).padEnd(8) + " " : "") +
    `${String(b.pid).padEnd(7)} ${escapeText(b.comm).padEnd(16)} ${String(b.ret).padEnd(3)} ` +
    `${b.proto.padEnd(5)} ${b.opts.padEnd(5)} ${String(b.if).padEnd(4)} ` +
    `${String(b.port).padEnd(5)} ${b.addr.padEnd(48)}\n`;
}

function jsonFields(data: Uint8Array, o: Options, state: State) {
  const b = decodeBind(data, state);
  if (o.ports && !o.ports.includes(b.port)) return undefined;
  return b;
}

export const tool = eventTool({
  name: "bindsnoop",
  summary: "Trace bind syscalls.",
  examples: [
    ["bindsnoop", "trace all bind syscall"],
    ["bindsnoop -t", "include timestamps"],
    ["bindsnoop -x", "include errors on output"],
    ["bindsnoop -p 1216", "only trace PID 1216"],
    ["bindsnoop -P 80,81", "only trace port 80 and 81"],
  ],
  flags: {
    timestamp: flag("include timestamp on output", "t"),
    failed: flag("include errors on output", "x"),
    pid: option("PID", "process ID to trace", pidValue, { short: "p" }),
    ports: option("PORTS", "comma-separated list of ports to trace", portList, { short: "P" }),
  },
  variants: [["-x"], ["-p", "1"]],
}, {
  recordSize: bindEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new State(),
  header,
  text: formatLine,
  json: jsonFields,
});

if (import.meta.main) await tool.main();
