/**
 * DSL macros for block I/O requests (`struct request *`, the argument of the
 * block_rq_* tracepoints): which disk a request is for, as the kernel's
 * internal dev_t (`major << 20 | first_minor`, what lib/symbols/disks.ts
 * resolves names to).
 *
 * The disk hangs off the request queue (`rq->q->disk`) since Linux 5.15 and
 * off the request (`rq->rq_disk`) before; the layout of the running kernel
 * decides. A request without a disk reads as device 0: BTF-typed loads of a
 * NULL pointer read zero, and so do failed probe reads.
 *
 * @example
 * ```ts
 * import { skipUnlessDisk } from "./block_request.ts";
 * import { tpBtf } from "./program.ts";
 * import { r7 } from "./registers.ts";
 * const p = tpBtf("block_rq_issue");
 * p.ctx(r7, "rq");
 * const done = p.label();
 * skipUnlessDisk(p, r7, { major: 7, minor: 0 }, done); // loop0 only
 * ```
 *
 * @module
 */
import type { Label } from "./builder.ts";
import type { Probe } from "./program.ts";
import { r1, type Reg } from "./registers.ts";

/** The `->` path from a request to its gendisk on this kernel. */
function diskPath(p: Probe): string {
  try {
    p.layouts.structField("request_queue", "disk");
    return "q->disk";
  } catch {
    return "rq_disk";
  }
}

/** MINORBITS of include/linux/kdev_t.h. */
const MINOR_BITS = 20;

/** dst = the dev_t of request `rq`'s disk (0 when it has none); clobbers `tmp`. */
export function requestDiskDev(p: Probe, dst: Reg, rq: Reg, tmp: Reg): Probe {
  const disk = diskPath(p);
  p.field(dst, rq, "request", `${disk}->major`).lsh(dst, MINOR_BITS);
  p.field(tmp, rq, "request", `${disk}->first_minor`);
  return p.alu("or", dst, tmp);
}

/**
 * Jumps to `skip` unless request `rq` is for the disk (major, minor). Uses
 * r1 (and r2, r3 for probe reads); `rq` must not be r1-r5.
 */
export function skipUnlessDisk(
  p: Probe,
  rq: Reg,
  disk: { major: number; minor: number },
  skip: Label,
): Probe {
  const path = diskPath(p);
  // Compare the two numbers as read: cheaper than building the dev_t.
  p.field(r1, rq, "request", `${path}->major`).jumpIf(r1, "!=", disk.major, skip);
  p.field(r1, rq, "request", `${path}->first_minor`).jumpIf(r1, "!=", disk.minor, skip);
  return p;
}
