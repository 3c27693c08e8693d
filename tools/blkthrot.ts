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
 * Here the entry probe reads the blk cgroup's css id right away (from the
 * bio's blkg since 5.19, from the blkg argument before), so the return probe
 * dereferences nothing. On a kernel without kprobes (CONFIG_KPROBE_EVENTS
 * off) attaching fails: the tool prints the kernel's answer in one line,
 * exits 1 and leaves nothing loaded.
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
// the modules it uses.
import { Btf } from "../lib/btf/btf.ts";
import { intervalTool } from "../lib/cli/drivers/interval.ts";
import type { Session } from "../lib/cli/session.ts";
import { kprobe } from "../lib/dsl/kprobe.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { arg, retval } from "../lib/dsl/pt_regs.ts";
import { r0, r1, r10, r7 } from "../lib/dsl/registers.ts";
import { defineSchema } from "../lib/dsl/schema.ts";
import { FeatureMissingError } from "../lib/kernel/errors.ts";
import { requireVmlinuxBtf } from "../lib/kernel/features.ts";

// --- BPF side ---------------------------------------------------------------

/** Per thread (by TID): the css id of the blk cgroup whose bio is in the throttle. */
const entered = defineMap({
  name: "blkthrot_entry",
  type: "hash",
  keySize: 4,
  valueSize: 4,
  maxEntries: 10240,
});
/** @throttled[id] and @notthrottled[id]: u64 counts by {css id, throttled}. */
const countKey = defineSchema("count_key", { css_id: "u32", throttled: "u32" });
const counts = defineMap({
  name: "blkthrot_counts",
  type: "hash",
  keySize: countKey.size,
  valueSize: 8,
  maxEntries: 10240,
});

/** The throttle's entry point here: the old name, or its 5.19+ out-of-line part. */
function throttleFunction(btf: Btf): string {
  const fn = ["blk_throtl_bio", "__blk_throtl_bio"].find((f) => btf.findId(f, "FUNC"));
  if (fn === undefined) {
    throw new FeatureMissingError(
      "this kernel does not have block throttling (CONFIG_BLK_DEV_THROTTLING): nothing to trace",
    );
  }
  return fn;
}

/** kprobe: @blkg[tid] = the css id of the bio's blk cgroup. */
function entryProgram(fn: string, btf: Btf) {
  const p = kprobe(fn, { name: "blkthrot_entry" });
  const key = p.stack(4), value = p.stack(4);
  if (btf.funcProtoParams(fn)[0]?.name === "bio") {
    arg(p, r7, 0).field(r1, r7, "bio", "bi_blkg->blkcg->css.id"); // (struct bio *bio)
  } else {
    arg(p, r7, 1).field(r1, r7, "blkcg_gq", "blkcg->css.id"); // (q, struct blkcg_gq *blkg, bio)
  }
  p.store("u32", r10, value, r1).call("get_current_pid_tgid").store("u32", r10, key, r0);
  p.update(entered, key, value);
  return p.ret(0);
}

/** kretprobe: count the bio as throttled (true returned: queued for later) or not. */
function returnProgram(fn: string) {
  const p = kprobe(fn, { retprobe: true, name: "blkthrot_ret" });
  const tid = p.stack(4), key = p.stack(countKey.size), zero = p.stack(8);
  p.call("get_current_pid_tgid").store("u32", r10, tid, r0);
  p.lookup(entered, tid).returnIf(r0, "==", 0);
  p.load(r1, "u32", r0, 0).store("u32", r10, key + countKey.offset("css_id"), r1);
  retval(p, r1).and(r1, 0xff); // a bool: only the low byte is set
  p.if(r1, "!=", 0, () => p.mov(r1, 1));
  p.store("u32", r10, key + countKey.offset("throttled"), r1).delete(entered, tid);
  p.lookupOrInit(counts, key, zero).returnIf(r0, "==", 0);
  p.mov(r1, 1).atomicAdd("u64", r0, 0, r1);
  return p.ret(0);
}

function buildPrograms() {
  requireVmlinuxBtf();
  const btf = Btf.vmlinux();
  const fn = throttleFunction(btf);
  return [entryProgram(fn, btf), returnProgram(fn)].map((p) => p.build());
}

// --- user side --------------------------------------------------------------

/** Counts by css id, of throttled and of not throttled bios, in ascending order (as bpftrace). */
function readCounts(session: Session) {
  const out = { notthrottled: [] as [number, number][], throttled: [] as [number, number][] };
  for (const [key, value] of session.maps.get(counts)!.entries()) {
    const k = countKey.decode(key);
    const n = Number(new DataView(value.buffer).getBigUint64(0, true));
    out[k.throttled ? "throttled" : "notthrottled"].push([k.css_id, n]);
  }
  for (const list of Object.values(out)) list.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  return out;
}

export const tool = intervalTool({
  name: "blkthrot",
  summary: "Count block I/O throttled or not, per blk cgroup (kprobes).",
  examples: [["blkthrot", "count throttled and not throttled block I/O until Ctrl-C"]],
  flags: {},
}, {
  banner: () => "Tracing block I/O throttles by cgroup. Ctrl-C to end",
  build: buildPrograms,
  read: readCounts,
  // bpftrace's maps at exit: "@notthrottled[1]: 506", a blank line between maps
  text: (c) =>
    Object.entries(c).filter(([, list]) => list.length > 0)
      .map(([name, list]) => list.map(([id, n]) => `@${name}[${id}]: ${n}\n`).join(""))
      .join("\n"),
  json: (c) => ({
    throttled: c.throttled.map(([css_id, count]) => ({ css_id, count })),
    notthrottled: c.notthrottled.map(([css_id, count]) => ({ css_id, count })),
  }),
});

if (import.meta.main) await tool.main();
