/** What the kernel says about a loaded program (bpf_prog_info): id, sizes, run-time counters. */
import { BpfError } from "./errors.ts";
import { bpf } from "./libbpf.ts";
import type { OwnedFd } from "./fd.ts";

/** What bpf_prog_info says about a loaded program. */
export interface ProgramInfo {
  id: number;
  name: string;
  xlatedBytes: number;
  jitedBytes: number;
  runTimeNs: bigint;
  runCount: bigint;
  verifiedInsns: number;
}

const INFO_SIZE = 232;

/** Reads bpf_prog_info for a loaded program. */
export function programInfo(prog: OwnedFd): ProgramInfo {
  const info = new Uint8Array(INFO_SIZE);
  const len = new Uint32Array([INFO_SIZE]);
  const ret = bpf().bpf_obj_get_info_by_fd(prog.fd, info, len);
  if (ret < 0) throw new BpfError("reading program info", -ret);
  const v = new DataView(info.buffer);
  const nameBytes = info.subarray(64, 80);
  const end = nameBytes.indexOf(0);
  return {
    id: v.getUint32(4, true),
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 16 : end)),
    jitedBytes: v.getUint32(16, true),
    xlatedBytes: v.getUint32(20, true),
    runTimeNs: v.getBigUint64(192, true),
    runCount: v.getBigUint64(200, true),
    verifiedInsns: v.getUint32(216, true),
  };
}
