/**
 * BPF_PROG_TEST_RUN: run a loaded program once on a context we supply and
 * read its return value. Lets tests check what generated code computes,
 * in the real kernel, without waiting for an event.
 */
import { BpfError } from "./errors.ts";
import type { OwnedFd } from "./fd.ts";
import { addressOf } from "./ffi.ts";
import { bpf } from "./libbpf.ts";

const TEST_RUN_OPTS_SIZE = 80;

/**
 * Runs `prog` once with `ctx` as its context (for raw_tracepoint programs:
 * the tracepoint arguments as u64s) and returns r0.
 */
export function testRun(prog: OwnedFd, ctx: Uint8Array<ArrayBuffer>): number {
  const opts = new Uint8Array(TEST_RUN_OPTS_SIZE);
  const v = new DataView(opts.buffer);
  v.setBigUint64(0, BigInt(TEST_RUN_OPTS_SIZE), true); // sz
  v.setBigUint64(32, addressOf(ctx), true); // ctx_in
  v.setUint32(48, ctx.length, true); // ctx_size_in
  const ret = bpf().bpf_prog_test_run_opts(prog.fd, opts);
  if (ret < 0) throw new BpfError("BPF_PROG_TEST_RUN", -ret);
  return v.getUint32(56, true); // retval
}
