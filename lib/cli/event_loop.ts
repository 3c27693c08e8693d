/**
 * The loop of an event tool (execsnoop, opensnoop...): open the reader on the
 * channel's buffer, print each record as one line, report lost events on
 * stderr the way the bcc tools do, and stop on Ctrl-C/SIGTERM or after a
 * duration, draining what the kernel already produced first.
 *
 * @module
 */
import type { EventsDef } from "../dsl/events.ts";
import { DEFAULT_RING_BYTES } from "../dsl/events.ts";
import type { MapDef } from "../dsl/maps.ts";
import type { BpfMap } from "../kernel/map.ts";
import { type EventReader, LostCounter, openEventReader } from "../kernel/ringbuf.ts";
import { writeOut } from "./output.ts";
import type { StopSignal } from "./stop.ts";

/** What streamEvents needs to know. */
export interface StreamOptions {
  /** The tool's maps (Session.maps). */
  maps: Map<MapDef, BpfMap>;
  /** The event channel whose buffer the records come from. */
  channel: EventsDef;
  /** Ends the stream (Ctrl-C, SIGTERM); what is already buffered is still drained. */
  stop: StopSignal;
  /** Stop after this many milliseconds (opensnoop -d). */
  durationMs?: number;
  /**
   * How long one wait for data may take before the loop looks around again (ms, default
   * 500). Data and stops end the wait at once; what waits for this is the lost-event count
   * of records the BPF side dropped without sending any (a full hash, say).
   */
  pollMs?: number;
  /**
   * While events flow, drain at most this often (ms, default 50): output is at most this
   * late, and a busy stream costs one wakeup per batch, not per event.
   */
  batchMs?: number;
}

/** What a finished stream saw. */
export interface StreamStats {
  /** Records read from the buffer. */
  records: number;
  /** Events the BPF side counted as lost. */
  lost: number;
}

const LOST_CHECK_MS = 250;

/**
 * Streams records until stopped. `onRecord` decodes one record and returns
 * the text to print for it (or nothing, when a user-space filter drops it);
 * output is written once per drained batch. Lost events are reported on
 * stderr as "Lost N events on CPU #C!" (libbpf-tools' wording).
 */
export async function streamEvents(
  opts: StreamOptions,
  onRecord: (data: Uint8Array) => string | undefined,
): Promise<StreamStats> {
  const { stop, channel } = opts;
  const reader = openEventReader(opts.maps.get(channel.events)!);
  const lost = new LostCounter(opts.maps.get(channel.lost)!);
  const deadline = opts.durationMs === undefined ? Infinity : performance.now() + opts.durationMs;
  const pollMs = opts.pollMs ?? 500;
  const batchMs = opts.batchMs ?? 50;
  let records = 0;
  let pending: string[] = [];
  const handle = (data: Uint8Array) => {
    records++;
    const line = onRecord(data);
    if (line !== undefined) pending.push(line);
  };
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    writeOut(text);
  };
  let lastLostCheck = performance.now();
  try {
    for (;;) {
      const drainedAt = performance.now();
      const n = drainAll(reader, handle);
      flush();
      const now = performance.now();
      if (now - lastLostCheck >= LOST_CHECK_MS) {
        reportLost(lost);
        lastLostCheck = now;
      }
      if (stop.stopped || now >= deadline) break;
      if (n > 0 && n < DRAIN_BATCH) {
        // Events are flowing: collect a few ms of them per drain rather than
        // waking up for each one (the cost of a wakeup dwarfs that of a record).
        // reader.pause, not a timer: Deno wakes up for it with a third of the CPU.
        await Promise.race([
          reader.pause(Math.min(batchMs - (now - drainedAt), deadline - now)),
          stop.promise,
        ]);
      } else if (n === 0) {
        await Promise.race([reader.wait(Math.min(pollMs, deadline - now)), stop.promise]);
      } else {
        await stop.sleep(0); // a full batch: more is waiting, but let signals in first
      }
    }
    // What the kernel produced before the stop still gets printed (bounded:
    // a workload that keeps going cannot hold the exit up).
    const until = performance.now() + 1000;
    while (drainAll(reader, handle) > 0 && performance.now() < until) flush();
    flush();
    reportLost(lost);
  } finally {
    reader.close();
  }
  return { records, lost: lost.total };
}

/** Records per drain: output is flushed, and signals looked at, at least this often. */
const DRAIN_BATCH = 4096;

function drainAll(reader: EventReader, handle: (data: Uint8Array) => void): number {
  return reader.drain(handle, DRAIN_BATCH);
}

function reportLost(lost: LostCounter): void {
  const losses = lost.poll();
  if (losses.length === 0) return;
  console.error(losses.map(({ cpu, lost }) => `Lost ${lost} events on CPU #${cpu}!`).join("\n"));
}

/**
 * Ring buffer size for event tools: `BPFTK_RING_BYTES` when set (tests use
 * a tiny buffer to provoke and check loss accounting), else the tool's default.
 */
export function ringBytesFromEnv(fallback = DEFAULT_RING_BYTES): number {
  const v = Deno.env.get("BPFTK_RING_BYTES");
  return v === undefined ? fallback : Number(v);
}
