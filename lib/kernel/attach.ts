/**
 * Attaching loaded programs. Every attachment is a link fd: closing it
 * detaches. Kinds: tracepoint (through a perf event), raw tracepoint, tp_btf,
 * perf_event sampling on each CPU, and kprobe/uprobe through their dynamic
 * perf PMUs (where the kernel has them).
 */
import { ATTACH_TYPE } from "../../bytecode/prog_types.ts";
import { BpfError } from "./errors.ts";
import { dynamicPmu } from "./features.ts";
import { checkFd, OwnedFd } from "./fd.ts";
import { addressOf, cString } from "./ffi.ts";
import { bpf } from "./libbpf.ts";
import { PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE, type PerfEvent, perfEventOpen } from "./perf_event.ts";
import type { BpfProgram } from "./program.ts";

/** An attachment; close() detaches (and closes the perf events it owns). */
export class Link extends OwnedFd {
  /** `owned`: perf events the link was made through, closed with it. */
  constructor(fd: number, label: string, readonly owned: PerfEvent[] = []) {
    super(fd, "link", label);
  }
  /** Detaches, then closes the perf events it owns. */
  override close(): void {
    super.close();
    for (const ev of this.owned) ev.close();
  }
}

/**
 * Attaches to a tracepoint by its tracefs id. One perf event on one CPU is
 * enough: a tracepoint program runs wherever the tracepoint fires.
 */
export function attachTracepoint(prog: BpfProgram, tracepointId: number, label: string): Link {
  const ev = perfEventOpen(
    { type: PERF_TYPE.TRACEPOINT, config: tracepointId, sample: 1, sampleRaw: true },
    -1,
    0,
  );
  return linkPerfEvent(prog, ev, `tracepoint ${label}`);
}

/** Attaches a raw_tracepoint program by tracepoint name ("sched_switch"). */
export function attachRawTracepoint(prog: BpfProgram, name: string): Link {
  const fd = checkFd(
    bpf().bpf_raw_tracepoint_open(cString(name), prog.fd),
    (errno) => new BpfError(`attaching raw tracepoint ${name}`, errno),
  );
  return new Link(fd, `raw_tracepoint ${name}`);
}

/** Attaches a tp_btf program (its target was fixed at load by attach_btf_id). */
export function attachTpBtf(prog: BpfProgram, name: string): Link {
  const fd = checkFd(
    bpf().bpf_raw_tracepoint_open(null, prog.fd),
    (errno) => new BpfError(`attaching tp_btf ${name}`, errno),
  );
  return new Link(fd, `tp_btf ${name}`);
}

/** Attaches a perf_event program to an already opened perf event (sampling). */
function linkPerfEvent(prog: BpfProgram, ev: PerfEvent, label: string): Link {
  try {
    const fd = checkFd(
      bpf().bpf_link_create(prog.fd, ev.fd, ATTACH_TYPE.BPF_PERF_EVENT, null),
      (errno) => new BpfError(`attaching ${label}`, errno),
    );
    return new Link(fd, label, [ev]);
  } catch (e) {
    ev.close();
    throw e;
  }
}

/**
 * Attaches a kprobe program to a kernel function (entry, or return with
 * `retprobe`), through the kprobe PMU. Fails with a one-line error naming
 * the missing feature on kernels without kprobes.
 */
export function attachKprobe(prog: BpfProgram, func: string, retprobe = false): Link {
  const pmu = dynamicPmu("kprobe");
  const name = cString(func);
  const ev = perfEventOpen(
    {
      type: pmu.type,
      config: retprobe ? 1n << BigInt(pmu.retBit) : 0n,
      sample: 1,
      config1: addressOf(name),
      config2: 0n,
    },
    -1,
    0,
  );
  return linkPerfEvent(prog, ev, `${retprobe ? "kretprobe" : "kprobe"} ${func}`);
}

/**
 * Attaches a kprobe-type program to a user-space location: `path` (an ELF
 * file) at file `offset`, entry or return, for one process (`pid`) or all (-1).
 */
export function attachUprobe(
  prog: BpfProgram,
  path: string,
  offset: number,
  opts: { retprobe?: boolean; pid?: number; refCtrOffset?: number } = {},
): Link {
  const pmu = dynamicPmu("uprobe");
  // config:32-63 is the uprobe PMU's ref_ctr_offset: the kernel keeps a USDT
  // semaphore raised while the probe is attached (and other tracers of the
  // same probe, bpftrace among them, must pass the same offset).
  const refCtr = BigInt(opts.refCtrOffset ?? 0) << 32n;
  const file = cString(path);
  const pid = opts.pid ?? -1;
  const ev = perfEventOpen(
    {
      type: pmu.type,
      config: (opts.retprobe ? 1n << BigInt(pmu.retBit) : 0n) | refCtr,
      sample: 1,
      config1: addressOf(file),
      config2: BigInt(offset),
    },
    pid,
    pid === -1 ? 0 : -1,
  );
  return linkPerfEvent(
    prog,
    ev,
    `${opts.retprobe ? "uretprobe" : "uprobe"} ${path}:0x${offset.toString(16)}`,
  );
}

/**
 * Attaches a perf_event program to a sampling event on each CPU (or one):
 * software cpu-clock at `frequency` Hz, or every `period` nanoseconds.
 */
export function attachSampling(
  prog: BpfProgram,
  opts: { frequency?: number; period?: number; cpus: number[]; pid?: number },
): Link[] {
  const links: Link[] = [];
  try {
    for (const cpu of opts.cpus) {
      const ev = perfEventOpen(
        {
          type: PERF_TYPE.SOFTWARE,
          config: PERF_COUNT_SW_CPU_CLOCK,
          sample: opts.frequency ?? opts.period ?? 49,
          freq: opts.frequency !== undefined,
        },
        opts.pid ?? -1,
        cpu,
      );
      links.push(linkPerfEvent(prog, ev, `cpu-clock on CPU ${cpu}`));
    }
  } catch (e) {
    for (const link of links) link.close(); // the caller never sees them: release them here
    throw e;
  }
  return links;
}
