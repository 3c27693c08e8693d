/**
 * Attaching loaded programs. Every attachment is a link fd: closing it
 * detaches. Kinds: tracepoint (through a perf event), raw tracepoint, tp_btf,
 * perf_event sampling. uprobe and kprobe attach through perf events too and
 * will plug in here.
 */
import { ATTACH_TYPE } from "../../bytecode/prog_types.ts";
import { BpfError } from "./errors.ts";
import { checkFd, OwnedFd } from "./fd.ts";
import { bpf, cString } from "./libbpf.ts";
import { PERF_TYPE, type PerfEvent, perfEventOpen } from "./perf_event.ts";
import type { BpfProgram } from "./program.ts";

/** An attachment; close() detaches (and closes the perf events it owns). */
export class Link extends OwnedFd {
  constructor(fd: number, label: string, readonly owned: PerfEvent[] = []) {
    super(fd, "link", label);
  }
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
export function linkPerfEvent(prog: BpfProgram, ev: PerfEvent, label: string): Link {
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
