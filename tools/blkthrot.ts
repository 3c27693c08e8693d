#!/usr/bin/env -S deno run -A
/**
 * blkthrot: count block I/O throttled and not throttled, by blk cgroup (the
 * cgroup v2 io controller's io.max limits, "blk-throttle").
 *
 * Event: the only place the decision is visible is the return of the block
 * throttle's entry function, blk_throtl_bio() (an inline wrapper of
 * __blk_throtl_bio() since Linux 5.19): true means the bio was queued to be
 * sent later. No tracepoint marks it, so this tool needs a kprobe/kretprobe
 * pair there, as the original (bpftrace book tool blkthrot.bt) does:
 *
 *     kprobe:blk_throtl_bio { @blkg[tid] = arg1; }
 *     kretprobe:blk_throtl_bio /@blkg[tid]/ {
 *         $blkg = (struct blkcg_gq *)@blkg[tid];
 *         if (retval) { @throttled[$blkg->blkcg->css.id] = count(); }
 *         else { @notthrottled[$blkg->blkcg->css.id] = count(); }
 *         delete(@blkg[tid]);
 *     }
 *
 * On a kernel without kprobes (CONFIG_KPROBE_EVENTS off) it says so in one
 * line and exits 1. Where kprobes exist it still exits 1 for now: the
 * toolkit's loader (lib/kernel) cannot attach kprobes yet.
 *
 * Output of the original:
 *
 *     # blkthrot.bt
 *     Attaching 3 probes...
 *     Tracing block I/O throttles by cgroup. Ctrl-C to end
 *     ^C
 *
 *     @notthrottled[1]: 506
 *
 *     @throttled[1]: 31
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses. --dump code is imported on demand.
import { Btf } from "../lib/btf/btf.ts";
import { parseToolArgs } from "../lib/cli/args.ts";
import { writeOut } from "../lib/cli/output.ts";
import { runTool } from "../lib/cli/run.ts";
import { formatHelp, UsageError } from "../lib/cli/usage.ts";
import { FeatureMissingError } from "../lib/kernel/errors.ts";
import { hasVmlinuxBtf, requireKprobes } from "../lib/kernel/features.ts";

const HELP = {
  name: "blkthrot",
  summary: "Count block I/O throttled and not throttled, by blk cgroup (needs kprobes).",
  usage: "blkthrot [-h]",
  examples: [
    ["blkthrot", "count throttled and not throttled block I/O until Ctrl-C"],
  ] as [string, string][],
  flags: [],
};

/** The throttle's entry point in this kernel: the old name, or its 5.19+ out-of-line part. */
function throttleFunction(): string | undefined {
  if (!hasVmlinuxBtf()) return "blk_throtl_bio";
  const btf = Btf.vmlinux();
  return ["blk_throtl_bio", "__blk_throtl_bio"].find((f) => btf.findId(f, "FUNC") !== undefined);
}

await runTool("blkthrot", () => {
  const { values, positionals } = parseToolArgs(Deno.args, {});
  if (positionals.length > 0) {
    throw new UsageError(`unrecognized positional argument: '${positionals[0]}'`);
  }
  if (values.help) return writeOut(formatHelp(HELP));

  requireKprobes("its probe on blk_throtl_bio");
  const fn = throttleFunction();
  if (fn === undefined) {
    throw new FeatureMissingError(
      "this kernel has no block throttling (CONFIG_BLK_DEV_THROTTLING): nothing to trace",
    );
  }
  throw new FeatureMissingError(
    `kprobes exist here, but this toolkit cannot attach them yet (kprobe on ${fn})`,
  );
});
