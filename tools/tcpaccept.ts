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
// the modules it uses. --dump code is imported on demand.
import { parseToolArgs, pidArg } from "../lib/cli/args.ts";
import { ringBytesFromEnv, streamEvents } from "../lib/cli/event_loop.ts";
import { writeOut } from "../lib/cli/output.ts";
import { portList } from "../lib/cli/ports.ts";
import { runTool } from "../lib/cli/run.ts";
import { loadAndAttach } from "../lib/cli/session.ts";
import { StopSignal } from "../lib/cli/stop.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { defineEvents, type EventsDef, reserve, submit } from "../lib/dsl/events.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r7, r8, r9 } from "../lib/dsl/registers.ts";
import { char, defineSchema } from "../lib/dsl/schema.ts";
import {
  decodeSockEndpoints,
  localPortNetworkOrder,
  networkOrder,
  skipUnlessPortIn,
  sockEndpointFields,
  type SockEndpoints,
  storeSockEndpoints,
} from "../lib/dsl/sock.ts";
import { escapeText, stringifyJson } from "../lib/format/escape.ts";
import { AF_INET, AF_INET6 } from "../lib/format/inet.ts";
import { formatTimeOfDay } from "../lib/format/time.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";
import { requireBpfPrivileges } from "../lib/kernel/privileges.ts";
import { eventBufferKind } from "../lib/kernel/ringbuf.ts";

const IPPROTO_TCP = 6;

const HELP = {
  name: "tcpaccept",
  summary: "Trace TCP accepts",
  usage: "tcpaccept [-h] [-T] [-t] [-p PID] [-P PORTS] [-4 | -6]",
  examples: [
    ["tcpaccept", "trace all TCP accept()s"],
    ["tcpaccept -t", "include timestamps"],
    ["tcpaccept -P 80,81", "only trace port 80 and 81"],
    ["tcpaccept -p 181", "only trace PID 181"],
    ["tcpaccept -4", "trace IPv4 family"],
    ["tcpaccept -6", "trace IPv6 family"],
  ] as [string, string][],
  flags: [
    { flags: "-T, --time", help: "include time column on output (HH:MM:SS)" },
    { flags: "-t, --timestamp", help: "include timestamp on output" },
    { flags: "-p, --pid PID", help: "trace this PID only" },
    { flags: "-P, -L, --port PORTS", help: "comma-separated list of local ports to trace" },
    { flags: "-4, --ipv4", help: "trace IPv4 family only" },
    { flags: "-6, --ipv6", help: "trace IPv6 family only" },
  ],
};

/** What the operator asked for. */
interface Options {
  time: boolean;
  timestamp: boolean;
  pid?: number;
  ports?: number[];
  /** Only sockets of this address family (AF_INET / AF_INET6). */
  family?: number;
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseToolArgs(argv, {
    time: { type: "boolean", short: "T" },
    timestamp: { type: "boolean", short: "t" },
    pid: { type: "string", short: "p" },
    port: { type: "string", short: "P" },
    localport: { type: "string", short: "L" },
    ipv4: { type: "boolean", short: "4" },
    ipv6: { type: "boolean", short: "6" },
  });
  if (positionals.length) throw new UsageError(`unrecognized argument: '${positionals[0]}'`);
  if (values.ipv4 && values.ipv6) throw new UsageError("-4 and -6 cannot be used together");
  if (values.port !== undefined && values.localport !== undefined) {
    throw new UsageError("-P and -L are the same option: give one");
  }
  const ports = values.port ?? values.localport;
  const opts: Options = {
    time: !!values.time,
    timestamp: !!values.timestamp,
    pid: values.pid === undefined ? undefined : pidArg(values.pid),
    ports: ports === undefined ? undefined : portList(ports, values.port ? "-P" : "-L"),
    family: values.ipv4 ? AF_INET : values.ipv6 ? AF_INET6 : undefined,
  };
  return { values, opts };
}

// --- BPF side ---------------------------------------------------------------

/** One accepted connection, as sent to user space. */
const acceptEvent = defineSchema("accept_event", {
  ts_ns: "u64",
  comm: char(16),
  ...sockEndpointFields,
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
    localPortNetworkOrder(p, r1, r8);
    skipUnlessPortIn(p, r1, o.ports.map(networkOrder), done);
  }

  reserve(p, ch, r9, done); // r9: the record
  p.ktime(r0);
  acceptEvent.store(p, r9, "ts_ns", r0);
  p.call("get_current_pid_tgid").rsh(r0, 32);
  acceptEvent.store(p, r9, "pid", r0);
  acceptEvent.currentComm(p, r9, "comm");
  storeSockEndpoints(p, acceptEvent, r9, r8);
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

/** One accepted connection as the user side sees it. */
interface Accept extends SockEndpoints {
  pid: number;
  comm: string;
  /** Kernel time of the accept, microseconds. */
  tsUs: number;
}

function decodeAccept(data: Uint8Array): Accept {
  const e = acceptEvent.decode(data);
  return { pid: e.pid, comm: e.comm, tsUs: Number(e.ts_ns / 1000n), ...decodeSockEndpoints(e) };
}

function header(o: Options): string {
  return (o.time ? "TIME".padEnd(9) : "") + (o.timestamp ? "TIME(s)".padEnd(9) : "") +
    `${"PID".padEnd(7)} ${"COMM".padEnd(12)} IP ${"RADDR".padEnd(16)} RPORT ` +
    `${"LADDR".padEnd(16)} LPORT\n`;
}

function formatLine(a: Accept, o: Options, elapsed: number): string {
  return (o.time ? formatTimeOfDay(new Date()).padEnd(9) : "") +
    (o.timestamp ? elapsed.toFixed(3).padEnd(9) : "") +
    `${String(a.pid).padEnd(7)} ${escapeText(a.comm.slice(0, 12)).padEnd(12)} ` +
    `${String(a.ip).padEnd(2)} ${a.raddr.padEnd(16)} ${String(a.rport).padEnd(5)} ` +
    `${a.laddr.padEnd(16)} ${String(a.lport).padEnd(5)}\n`;
}

function formatJson(a: Accept, o: Options, elapsed: number): string {
  return stringifyJson({
    time: new Date().toISOString(),
    ...(o.timestamp ? { elapsed: Number(elapsed.toFixed(3)) } : {}),
    pid: a.pid,
    comm: a.comm,
    ip: a.ip,
    raddr: a.raddr,
    rport: a.rport,
    laddr: a.laddr,
    lport: a.lport,
  }) + "\n";
}

await runTool("tcpaccept", async () => {
  const { values, opts } = parseOptions(Deno.args);
  if (values.help) return writeOut(formatHelp(HELP));
  if (!values.dump) requireBpfPrivileges();
  const channel = defineEvents({
    kind: values.dump ? "ringbuf" : eventBufferKind(),
    recordSize: acceptEvent.size,
    ringBytes: ringBytesFromEnv(1 << 20),
  });
  const programs = buildPrograms(opts, channel);
  if (values.dump) return writeOut((await import("../lib/cli/dump.ts")).dumpPrograms(programs));

  const session = loadAndAttach(programs, { verbose: values.verbose });
  const stop = new StopSignal();
  if (!values.json) writeOut(header(opts));
  let firstUs: number | undefined;
  try {
    await streamEvents({ maps: session.maps, channel, stop }, (data) => {
      const a = decodeAccept(data);
      firstUs ??= a.tsUs; // -t counts from the first accept shown, as bcc does
      const elapsed = (a.tsUs - firstUs) / 1e6;
      return values.json ? formatJson(a, opts, elapsed) : formatLine(a, opts, elapsed);
    });
  } finally {
    stop.dispose();
  }
});
