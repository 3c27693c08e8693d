#!/usr/bin/env -S deno run -A
/**
 * readahead: how much of the file system's read-ahead is wasted, and how
 * long the used read-ahead pages waited in the page cache before a reader
 * asked for them (the BPF Performance Tools book's readahead.bt, bcc and
 * libbpf-tools readahead).
 *
 * The originals use kprobes: a flag per thread while inside
 * __do_page_cache_readahead() / page_cache_ra_unbounded(), page allocations
 * (__page_cache_alloc / filemap_alloc_folio) under that flag as the births
 * of read-ahead pages, and mark_page_accessed() / folio_mark_accessed() as
 * their use. This kernel has no kprobes (nor fentry), so this version uses
 * tracepoints (Linux 6.11+), and follows read-ahead per file, by page index:
 *
 * - readahead:page_cache_ra_unbounded (index, nr_to_read) and
 *   readahead:page_cache_ra_order (index, size): the current thread starts
 *   reading ahead pages [index, index + n) of a file (device, inode). The
 *   file gets a new read-ahead extent, born now (up to 4 per file: a fifth
 *   replaces the oldest, whose unread pages stay unused).
 * - filemap:mm_filemap_add_to_page_cache: a folio that thread adds to that
 *   file inside the window is read ahead: 2^order pages join the extent.
 * - filemap:mm_filemap_get_pages (read(2), splice): a read asked for pages
 *   [index, last_index]: the extents' pages in that range are used now, and
 *   their age (now - the extent's birth) goes in the histogram, per page.
 *   When a read's first batch ends at a folio still under I/O, the kernel
 *   returns that batch without the tracepoint; the next call starts where it
 *   ended. So a read that starts up to MAX_GAP pages after the same thread's
 *   last read of the file ended is taken to have read the gap too.
 *
 * Differences from the kprobe original: a page is used when a read asks for
 * it, not when it is marked accessed (the same read(2), a few microseconds
 * apart); page faults on mapped files are not uses here, so read-ahead for
 * mmap readers shows as unused; counts are pages (2^order per large folio;
 * libbpf-tools on folio kernels counts folios); pages of one read-ahead
 * window share its birth time; a reader that skips forward by less than
 * MAX_GAP pages over read-ahead pages counts them as used; evicted pages are
 * not followed (an evicted unused page stays unused; if a read brings it
 * back before its extent is consumed, it counts as used at the old age).
 *
 * A 32 MB file read with dd (bs=1M), pausing 1.2 s after 4 MB, then the
 * first 1 MB of another (read_ahead_kb 2560):
 *
 *     # deno run -A tools/readahead.ts
 *     Tracing fs read-ahead ... Hit Ctrl-C to end.
 *     ^C
 *     Readahead unused/total pages: 384/8832
 *          msecs               : count    distribution
 *              0 -> 1          : 7168     |****************************************|
 *              2 -> 3          : 384      |**                                      |
 *              4 -> 7          : 0        |                                        |
 *     [...]
 *           1024 -> 2047       : 896      |*****                                   |
 */
// Direct imports, not ../mod.ts: the tool starts faster when it loads only
// the modules it uses.
import { intervalTool, log2Buckets } from "../lib/cli/drivers/interval.ts";
import { option, seconds } from "../lib/cli/flags.ts";
import type { Session } from "../lib/cli/session.ts";
import { defineMap } from "../lib/dsl/maps.ts";
import { type Probe, tracepoint } from "../lib/dsl/program.ts";
import { r0, r1, r10, r2, r3, r4, r5, r7, r8, r9, type Reg } from "../lib/dsl/registers.ts";
import { formatLog2Hist } from "../lib/format/log2_hist.ts";
import { FeatureMissingError } from "../lib/kernel/errors.ts";
import type { BpfMap } from "../lib/kernel/map.ts";
import { TracepointNotFoundError } from "../lib/tracefs/format.ts";

/** Age histogram slots (log2 of milliseconds), as libbpf-tools readahead. */
const MAX_SLOTS = 20;
/** Slots after the histogram in the same per-CPU value: page totals. */
const TOTAL_SLOT = MAX_SLOTS, USED_SLOT = MAX_SLOTS + 1;
/** Largest folio order counted (2^20 pages = 4 GB), to keep the shift defined. */
const MAX_ORDER = 20;

// --- BPF side ---------------------------------------------------------------

/** A thread's read-ahead window (value of `window`): file, pages [start, end), extent slot. */
const WINDOW = { ino: 0, start: 8, end: 16, dev: 24, slot: 28, size: 32 } as const;
/** A file (key of `files`): inode, device (u32, padded to 8). */
const FILE = { ino: 0, dev: 8, size: 16 } as const;
/**
 * A file's read-ahead extents (value of `files`): EXTENTS extents of
 * { start, end (page indexes), born (ns), pages not used yet } (u64 each),
 * then the u32 slot the next window takes.
 */
const EXTENTS = 4;
const EXTENT = { start: 0, end: 8, born: 16, pages: 24, size: 32 } as const;
const FILE_VALUE = { next: EXTENTS * EXTENT.size, size: EXTENTS * EXTENT.size + 8 } as const;

/** A thread's last read (value of `reader`): file, and the page after the range it asked for. */
const READER = { ino: 0, dev: 8, next: 16, size: 24 } as const;
/**
 * Largest gap between a thread's reads of a file still taken as sequential
 * (pages). The kernel skips the get_pages tracepoint when a read's first
 * batch ends at a folio still under I/O (it returns the batch without that
 * folio, and the next call, which is traced, starts there): without this,
 * those pages would look unread. Read-ahead happens for sequential readers,
 * so a read that starts a little after the last one ended used the gap.
 */
const MAX_GAP = 4096;

/** Per thread: the read-ahead window it is filling now. */
const window = defineMap({
  name: "window",
  type: "lru_hash",
  keySize: 4,
  valueSize: WINDOW.size,
  maxEntries: 10240,
});
/** Per file: its recent read-ahead extents, whose pages wait to be read. */
const files = defineMap({
  name: "files",
  type: "lru_hash",
  keySize: FILE.size,
  valueSize: FILE_VALUE.size,
  maxEntries: 10240,
});
/** Per thread: where its last read of a file ended. */
const reader = defineMap({
  name: "reader",
  type: "lru_hash",
  keySize: 4,
  valueSize: READER.size,
  maxEntries: 10240,
});
/**
 * Counters, one u64 per CPU and key: keys 0..MAX_SLOTS-1 the age histogram
 * (log2 msecs, in pages), then total and used pages. A hash (filled with
 * zeros before attaching), not an array: the verifier tracks a constant key
 * of an array lookup precisely (to drop the NULL check), so each log2 result
 * would make a separate verifier state.
 */
const stats = defineMap({
  name: "stats",
  type: "percpu_hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: MAX_SLOTS + 2,
});

/** The u32 key of stats slot `slot`. */
function statsKey(slot: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new Uint32Array([slot]).buffer);
}

/** Stores the current thread ID (u32) at r10+off. */
function storeTid(p: Probe, off: number): void {
  p.call("get_current_pid_tgid").store("u32", r10, off, r0);
}

/** Stores the event's file (i_ino, s_dev) as a `files` key at r10+off. */
function storeFile(p: Probe, off: number): void {
  p.ctx(r1, "i_ino").store("u64", r10, off + FILE.ino, r1);
  p.ctx(r1, "s_dev").store("u64", r10, off + FILE.dev, r1);
}

/**
 * ra_unbounded / ra_order: the thread starts filling [index, index + n) of a
 * file. It gets the file's next extent slot (the oldest of EXTENTS: its
 * unread pages stay unused), born now, empty until pages are added.
 */
function windowProgram(event: string, sizeField: string, name: string): Probe {
  const p = tracepoint("readahead", event, { name });
  const tid = p.stack(4), win = p.stack(WINDOW.size), file = p.stack(FILE.size);
  const zero = p.stack(FILE_VALUE.size);
  storeTid(p, tid);
  storeFile(p, file);
  p.lookupOrInit(files, file, zero).returnIf(r0, "==", 0).mov(r7, r0);
  // slot = next++ % EXTENTS; the extent is at r7 + slot * EXTENT.size
  p.load(r8, "u32", r7, FILE_VALUE.next).mov(r1, r8).add(r1, 1)
    .store("u32", r7, FILE_VALUE.next, r1);
  p.and(r8, EXTENTS - 1).store("u32", r10, win + WINDOW.slot, r8);
  p.lsh(r8, 5).add(r8, r7);
  p.ctx(r9, "index").store("u64", r8, EXTENT.start, r9).store("u64", r8, EXTENT.end, r9);
  p.store("u64", r8, EXTENT.pages, 0).ktime(r0).store("u64", r8, EXTENT.born, r0);

  p.load(r1, "u64", r10, file + FILE.ino).store("u64", r10, win + WINDOW.ino, r1);
  p.load(r1, "u32", r10, file + FILE.dev).store("u32", r10, win + WINDOW.dev, r1);
  p.store("u64", r10, win + WINDOW.start, r9);
  p.ctx(r1, sizeField).add(r1, r9).store("u64", r10, win + WINDOW.end, r1);
  p.update(window, tid, win);
  return p.ret(0);
}

/** A folio added inside the thread's window is read ahead: its extent grows. */
function addProgram(): Probe {
  const p = tracepoint("filemap", "mm_filemap_add_to_page_cache", { name: "readahead_add" });
  const tid = p.stack(4), file = p.stack(FILE.size), slot = p.stack(4), pages = p.stack(8);
  const out = p.label();
  storeTid(p, tid);
  p.lookup(window, tid).jumpIf(r0, "==", 0, out).mov(r7, r0);
  p.ctx(r1, "i_ino").load(r2, "u64", r7, WINDOW.ino).jumpIf(r1, "!=", r2, out);
  p.ctx(r1, "s_dev").load(r2, "u32", r7, WINDOW.dev).jumpIf(r1, "!=", r2, out);
  p.ctx(r8, "index").load(r2, "u64", r7, WINDOW.start).jumpIf(r8, "<", r2, out);
  p.load(r2, "u64", r7, WINDOW.end).jumpIf(r8, ">=", r2, out);
  p.ctx(r1, "order").clamp(r1, MAX_ORDER).mov(r9, 1).lsh(r9, r1).store("u64", r10, pages, r9);
  // Read-ahead adds in ascending order: a later add below this one is not ours.
  p.mov(r1, r8).add(r1, r9).store("u64", r7, WINDOW.start, r1);
  p.load(r7, "u32", r7, WINDOW.slot).and(r7, EXTENTS - 1).lsh(r7, 5);

  storeFile(p, file);
  p.lookup(files, file).jumpIf(r0, "==", 0, out).add(r0, r7);
  p.add(r8, r9).store("u64", r0, EXTENT.end, r8);
  p.load(r1, "u64", r0, EXTENT.pages).add(r1, r9).store("u64", r0, EXTENT.pages, r1);
  p.store("u32", r10, slot, TOTAL_SLOT);
  addPages(p, slot, pages);
  p.bind(out);
  return p.ret(0);
}

/**
 * A read asked for pages [index, last_index] of a file: the read-ahead pages
 * there are used now (@age_ms = hist(age), @rapages -= n). Each extent gives
 * up the part the read covered; what a read skips stays unused.
 */
function getPagesProgram(): Probe {
  const p = tracepoint("filemap", "mm_filemap_get_pages", { name: "readahead_get" });
  const file = p.stack(FILE.size), now = p.stack(8), used = p.stack(8), slot = p.stack(4);
  const tid = p.stack(4), pos = p.stack(READER.size), positioned = p.label();
  storeFile(p, file);
  p.lookup(files, file).returnIf(r0, "==", 0).mov(r7, r0);
  p.ctx(r8, "index").ctx(r9, "last_index").add(r9, 1);
  // The read continues this thread's last one (see `reader`): it used the gap too.
  storeTid(p, tid);
  p.lookup(reader, tid).jumpIf(r0, "==", 0, positioned);
  p.load(r1, "u64", r0, READER.ino).load(r2, "u64", r10, file + FILE.ino)
    .jumpIf(r1, "!=", r2, positioned);
  p.load(r1, "u32", r0, READER.dev).load(r2, "u32", r10, file + FILE.dev)
    .jumpIf(r1, "!=", r2, positioned);
  p.load(r1, "u64", r0, READER.next).jumpIf(r1, ">", r8, positioned);
  p.mov(r2, r8).sub(r2, r1).jumpIf(r2, ">", MAX_GAP, positioned).mov(r8, r1);
  p.bind(positioned);
  p.load(r1, "u64", r10, file + FILE.ino).store("u64", r10, pos + READER.ino, r1);
  p.load(r1, "u64", r10, file + FILE.dev).store("u64", r10, pos + READER.dev, r1);
  p.store("u64", r10, pos + READER.next, r9).update(reader, tid, pos);
  p.ktime(r0).store("u64", r10, now, r0);
  for (let k = 0; k < EXTENTS; k++) {
    const e = k * EXTENT.size, next = p.label();
    p.load(r1, "u64", r7, e + EXTENT.pages).jumpIf(r1, "==", 0, next);
    // [lo, hi) = [start, end) within [index, last_index + 1)
    p.load(r2, "u64", r7, e + EXTENT.start).if(r2, "<", r8, () => p.mov(r2, r8));
    p.load(r3, "u64", r7, e + EXTENT.end).if(r3, ">", r9, () => p.mov(r3, r9));
    p.jumpIf(r2, ">=", r3, next);
    // used = min(hi - lo, pages not used yet); the extent now starts at hi
    p.mov(r4, r3).sub(r4, r2).if(r4, ">", r1, () => p.mov(r4, r1));
    p.sub(r1, r4).store("u64", r7, e + EXTENT.pages, r1).store("u64", r7, e + EXTENT.start, r3);
    p.load(r5, "u64", r7, e + EXTENT.end).if(r3, ">=", r5, () => {
      p.store("u64", r7, e + EXTENT.pages, 0);
    });
    p.store("u64", r10, used, r4);
    p.load(r3, "u64", r10, now).load(r1, "u64", r7, e + EXTENT.born).sub(r3, r1)
      .div(r3, 1_000_000);
    log2Clamped(p, r3, r1, r2, MAX_SLOTS - 1).store("u32", r10, slot, r3);
    addPages(p, slot, used);
    p.store("u32", r10, slot, USED_SLOT);
    addPages(p, slot, used);
    p.bind(next);
  }
  return p.ret(0);
}

/**
 * v = min(floor(log2(v)), max) (0 for v = 0), without branches: smear the top
 * bit down, count the bits (SWAR popcount), subtract one, then a branch-free
 * min. Unlike the DSL's log2() (six branches), it adds no verifier paths.
 * Clobbers t and k.
 */
function log2Clamped(p: Probe, v: Reg, t: Reg, k: Reg, max: number): Probe {
  p.alu("or", v, 1);
  for (const shift of [1, 2, 4, 8, 16, 32]) p.mov(t, v).rsh(t, shift).alu("or", v, t);
  // popcount(v)
  p.mov64(k, 0x5555555555555555n).mov(t, v).rsh(t, 1).and(t, k).sub(v, t);
  p.mov64(k, 0x3333333333333333n).mov(t, v).rsh(t, 2).and(t, k).and(v, k).add(v, t);
  p.mov64(k, 0x0f0f0f0f0f0f0f0fn).mov(t, v).rsh(t, 4).add(v, t).and(v, k);
  p.mov64(k, 0x0101010101010101n).alu("mul", v, k).rsh(v, 56).sub(v, 1);
  // v += min(0, max - v): k = max - v; t = all ones when k < 0
  p.mov(k, max).sub(k, v).mov(t, k).rsh(t, 63).alu("neg", t, 0).and(k, t).add(v, k);
  return p;
}

/** stats[r10+slot] += the u64 at r10+pages (per-CPU: no atomic needed). */
function addPages(p: Probe, slot: number, pages: number): void {
  p.lookup(stats, slot).if(r0, "!=", 0, () => {
    p.load(r1, "u64", r0, 0).load(r2, "u64", r10, pages).add(r1, r2).store("u64", r0, 0, r1);
  });
}

/** The four programs; a one-line error naming the tracepoints a kernel lacks. */
function buildPrograms() {
  try {
    return [
      windowProgram("page_cache_ra_unbounded", "nr_to_read", "readahead_unb"),
      windowProgram("page_cache_ra_order", "size", "readahead_ord"),
      addProgram(),
      getPagesProgram(),
    ].map((p) => p.build());
  } catch (e) {
    if (e instanceof TracepointNotFoundError) {
      throw new FeatureMissingError(
        `${e.message}: readahead needs the readahead:page_cache_ra_* and ` +
          "filemap:mm_filemap_* tracepoints (Linux 6.11+); kprobes are not used",
      );
    }
    throw e;
  }
}

// --- user side --------------------------------------------------------------

/** Zeroes every counter before attaching: the programs only add to existing entries. */
function zeroStats(map: BpfMap): void {
  for (let slot = 0; slot < MAX_SLOTS + 2; slot++) {
    map.update(statsKey(slot), new Uint8Array(map.valueBytes));
  }
}

interface Summary {
  total: number;
  unused: number;
  /** log2 slots of page age in milliseconds, counted in pages. */
  slots: number[];
}

function readSummary(session: Session): Summary {
  const map = session.maps.get(stats)!;
  const counters = Array.from({ length: MAX_SLOTS + 2 }, (_, slot) => {
    const value = map.lookup(statsKey(slot));
    if (!value) return 0;
    // one u64 per CPU
    const v = new DataView(value.buffer);
    let sum = 0;
    for (let off = 0; off < value.length; off += 8) sum += Number(v.getBigUint64(off, true));
    return sum;
  });
  const total = counters[TOTAL_SLOT], used = counters[USED_SLOT];
  return { total, unused: total - used, slots: counters.slice(0, MAX_SLOTS) };
}

export const tool = intervalTool({
  name: "readahead",
  summary: "Show fs automatic read-ahead usage.",
  examples: [
    ["readahead", "summarize read-ahead until Ctrl-C"],
    ["readahead -d 10", "trace for 10 seconds only"],
  ],
  flags: {
    duration: option("SECS", "duration to trace, in seconds", (t) => seconds(t, "duration"), {
      short: "d",
    }),
  },
  // One report: after DURATION seconds, or on Ctrl-C.
  options: (v) => ({ interval: v.duration, count: 1 }),
}, {
  banner: () => "Tracing fs read-ahead ... Hit Ctrl-C to end.",
  build: buildPrograms,
  initMaps: (_o, maps) => zeroStats(maps.get(stats)!),
  read: readSummary,
  text: (s) =>
    `Readahead unused/total pages: ${s.unused}/${s.total}\n${formatLog2Hist(s.slots, "msecs")}`,
  json: (s) => ({ unit: "msecs", unused: s.unused, total: s.total, buckets: log2Buckets(s.slots) }),
});

if (import.meta.main) await tool.main();
