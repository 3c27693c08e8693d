/** Loading programs into the kernel, with the verifier log captured. */
import { encode } from "../../bytecode/encode.ts";
import type { Insn } from "../../bytecode/insn.ts";
import { ATTACH_TYPE, PROG_TYPE, type ProgTypeName } from "../../bytecode/prog_types.ts";
import { BpfLoadError } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { addressOf, cString } from "./ffi.ts";
import { bpf } from "./libbpf.ts";

/** What to load. */
export interface ProgramSpec {
  /** Program name (the kernel keeps 15 characters). */
  name: string;
  /** Kernel program type. */
  type: ProgTypeName;
  /** Instructions, map fds already in place. */
  insns: Insn[];
  /** License string (default "GPL"); GPL-only helpers need a GPL-compatible one. */
  license?: string;
  /** For tp_btf: the BTF id of the `btf_trace_<event>` typedef in vmlinux. */
  attachBtfId?: number;
  /** 0: log only on failure (no cost on success); 1 or 2: always (for -v). */
  logLevel?: 0 | 1 | 2;
}

/** Size of libbpf 1.1's struct bpf_prog_load_opts; newer libbpf accepts it unchanged. */
const PROG_LOAD_OPTS_SIZE = 104;
const LOG_SIZE_ON_FAILURE = 1 << 20;
const LOG_SIZE_VERBOSE = 16 << 20;

/** A loaded program: its fd, and the verifier log when one was asked for. */
export class BpfProgram extends OwnedFd {
  /** Wraps a descriptor from bpf_prog_load; use {@link loadProgram}. */
  constructor(fd: number, readonly spec: ProgramSpec, readonly verifierLog: string) {
    super(fd, "program", spec.name);
  }
}

/** Loads a program; throws BpfLoadError carrying the kernel verifier's log. */
export function loadProgram(spec: ProgramSpec): BpfProgram {
  const code = encode(spec.insns);
  const logLevel = spec.logLevel ?? 0;
  const log = new Uint8Array(logLevel ? LOG_SIZE_VERBOSE : LOG_SIZE_ON_FAILURE);
  const opts = new Uint8Array(PROG_LOAD_OPTS_SIZE);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, BigInt(PROG_LOAD_OPTS_SIZE), true); // sz
  if (spec.type === "tp_btf") {
    view.setUint32(12, ATTACH_TYPE.BPF_TRACE_RAW_TP, true); // expected_attach_type
    view.setUint32(32, spec.attachBtfId ?? 0, true); // attach_btf_id
  }
  view.setUint32(88, logLevel, true); // log_level
  view.setUint32(92, log.length, true); // log_size
  view.setBigUint64(96, addressOf(log), true); // log_buf
  const fd = bpf().bpf_prog_load(
    PROG_TYPE[spec.type],
    cString(spec.name.slice(0, 15)),
    cString(spec.license ?? "GPL"),
    code,
    BigInt(code.length / 8),
    opts,
  );
  const text = decodeLog(log);
  if (fd < 0) throw new BpfLoadError(spec.name, -fd, text);
  return new BpfProgram(fd, spec, text);
}

function decodeLog(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}
