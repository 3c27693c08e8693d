#!/usr/bin/env -S deno run -A
/**
 * tcpaccept: passive TCP connections, one line per connection a process
 * accept()s, with the accepting process and both ends.
 *
 * Events. bcc tcpaccept uses a kretprobe on inet_csk_accept(), which returns
 * the new socket in the accepting process. Without kprobes, the same moment
 * and the same socket are at syscalls:sys_exit_accept / sys_exit_accept4:
 * the return value is the new file descriptor, so the socket is
 * current->files->fdt->fd[ret]->private_data->sk (read with
 * bpf_probe_read_kernel; offsets from vmlinux BTF). Only TCP sockets of
 * AF_INET/AF_INET6 are reported. sock:inet_sock_set_state (SYN_RECV ->
 * ESTABLISHED) would see the handshake complete, but in softirq context,
 * before any process has the connection; bcc avoids it for that reason, and
 * so does this tool. Accepts that do not go through the accept system calls
 * (io_uring's IORING_OP_ACCEPT, in-kernel servers) are not seen.
 *
 * Output and flags as bcc tcpaccept (-P PORTS, also spelt -L PORTS here);
 * --json one object per connection with the same fields.
 *
 *     # deno run -A tools/tcpaccept.ts
 *     PID     COMM         IP RADDR            RPORT LADDR            LPORT
 *     1463    sshd         4  127.0.0.1        51250 127.0.0.1        22
 *     1463    sshd         6  ::1              36170 ::1              22
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { eventTool } from "../lib/cli/drivers/events.ts";
import { option, pidValue } from "../lib/cli/flags.ts";
import { portList } from "../lib/cli/ports.ts";
import * as tcp from "../lib/cli/tcp_tools.ts";
import { UsageError } from "../lib/cli/usage.ts";
import { type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import * as sock from "../lib/dsl/sock.ts";
import { escapeText } from "../lib/format/escape.ts";
import { AF_INET, AF_INET6 } from "../lib/format/inet.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

const IPPROTO_TCP = 6;
/** bcc's time columns: TIME(s) with 3 decimals, nothing after its 9 columns. */
const TIME_STYLE = { digits: 3, gap: "" };

/** What the operator asked for. */
interface Options {
  time: boolean;
  timestamp: boolean;
  pid?: number;
  ports?: number[];
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

// --- BPF side ---------------------------------------------------------------

/** One accepted connection, as sent to user space. */
const acceptEvent = defineSchema("accept_event", {
  ts_ns: "u64",
  comm: char(16),
  ...sock.sockEndpointFields,
  pid: "u32",
});

/** sys_exit_accept(4): the socket behind the returned fd, if it is TCP over IP. */
function exitProgram(event: string, name: string, o: Options, ch: EventsDef): Probe {
  const p = tracepoint("syscalls", event, { name });
  const slot = p.stack(8), done = p.label();
  p.ctx(r7, "ret").returnIf(r7, "s<", 0); // r7: the new fd
  if (o.pid !== undefined) p.filterCurrentTgid(o.pid);

  // r8 = current->files->fdt->fd[fd]->private_data->sk
  p.call("get_current_task").field(r8, r0, "task_struct", "files->fdt->fd");
  p.lsh(r7, 3).add(r8, r7);
  p.store("u64", r10, slot, 0).stackPtr(r1, slot).mov(r2, 8).mov(r3, r8);
  p.call("probe_read_kernel").load(r8, "u64", r10, slot).jumpIf(r8, "==", 0, done);
  p.field(r8, r8, "file", "private_data").jumpIf(r8, "==", 0, done);
  p.field(r8, r8, "socket", "sk").jumpIf(r8, "==", 0, done);

  p.field(r1, r8, "sock", "sk_protocol").jumpIf(r1, "!=", IPPROTO_TCP, done);
  p.field(r1, r8, "sock", "__sk_common.skc_family");
  if (o.family !== undefined) {
    p.jumpIf(r1, "!=", o.family, done);
  } else {
    p.if(r1, "!=", AF_INET, () => p.jumpIf(r1, "!=", AF_INET6, done));
  }
  if (o.ports) {
    sock.localPortNetworkOrder(p, r1, r8);
    sock.skipUnlessPortIn(p, r1, o.ports.map(sock.networkOrder), done);
  }

  reserve(p, ch, r9, done); // r9: the record
  p.ktime(r0);
  acceptEvent.store(p, r9, "ts_ns", r0);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  acceptEvent.store(p, r9, "pid", r0);
  acceptEvent.currentComm(p, r9, "comm");
  sock.storeSockEndpoints(p, acceptEvent, r9, r8);
  submit(p, ch, r9);
  p.bind(done);
  return p.ret(0);
}

function buildPrograms(o: Options, ch: EventsDef) {
  requireVmlinuxBtf();
  return [
    exitProgram("sys_exit_accept4", "tcpaccept_acc4", o, ch),
    exitProgram("sys_exit_accept", "tcpaccept_acc", o, ch),
  ].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

function header(o: Options): string {
  return tcp.timeHeader(o, TIME_STYLE) +
    `${"PID".padEnd(7)} ${"COMM".padEnd(12)} IP ${"RADDR".padEnd(16)} RPORT ` +
    `${"LADDR".padEnd(16)} LPORT\n`;
}

function formatLine(data: Uint8Array, o: Options, clock: tcp.SinceFirst): string {
  const a = tcp.decodeConnection(acceptEvent.decode(data));
  return tcp.timeCells(o, clock.seconds(a.tsUs), TIME_STYLE) +
    `${String(a.pid).padEnd(7)} ${escapeText(a.comm.slice(0, 12)).padEnd(12)} ` +
    `${String(a.ip).padEnd(2)} ${a.raddr.padEnd(16)} ${String(a.rport).padEnd(5)} ` +
    `${a.laddr.padEnd(16)} ${String(a.lport).padEnd(5)}\n`;
}

export const tool = eventTool({
  name: "tcpaccept",
  summary: "Trace TCP accepts.",
  examples: [
    ["tcpaccept", "trace all TCP accept()s"],
    ["tcpaccept -t", "include timestamps"],
    ["tcpaccept -P 80,81", "only trace port 80 and 81"],
    ["tcpaccept -p 181", "only trace PID 181"],
    ["tcpaccept -4", "trace IPv4 family"],
    ["tcpaccept -6", "trace IPv6 family"],
  ],
  flags: {
    ...tcp.timeFlags,
    pid: option("PID", "trace this PID only", pidValue, { short: "p" }),
    port: option("PORTS", "comma-separated list of local ports to trace", portList, {
      short: "P",
    }),
    localport: option("PORTS", "the same as -P", portList, { short: "L" }),
    ...tcp.familyFlags,
  },
  variants: [["-4"], ["-6"], ["-p", "1"], ["-P", "80,443"]],
  options: (v): Options => {
    if (v.port && v.localport) throw new UsageError("-P and -L are the same option: give one");
    return { ...v, ports: v.port ?? v.localport, family: tcp.familyOf(v) };
  },
}, {
  recordSize: acceptEvent.size,
  ringBytes: 1 << 20,
  build: buildPrograms,
  prepare: () => new tcp.SinceFirst(),
  header,
  text: formatLine,
  json: (data, o, clock) => {
    const a = tcp.decodeConnection(acceptEvent.decode(data));
    return tcp.connectionJson(a, o, clock.seconds(a.tsUs), TIME_STYLE);
  },
});

if (import.meta.main) await tool.main();
