/**
 * Reading event records from the kernel without blocking Deno's event loop.
 *
 * A BPF ring buffer is read the way libbpf's ring_buffer__consume reads it,
 * but in TypeScript: the map's consumer page (read-write), producer page and
 * data area (read-only, the data mapped twice back to back so a record never
 * wraps) are mmap'ed once; a drain reads records straight out of that memory
 * and then publishes the new consumer position. Waiting for data is an
 * epoll_wait declared `nonblocking` (it runs on a worker thread and returns a
 * Promise), so timers and signal handlers (Ctrl-C) keep running meanwhile.
 *
 * Kernels without ring buffers (before 5.8) get per-CPU perf buffers
 * (perf_event_array + PERF_COUNT_SW_BPF_OUTPUT events), read the same way.
 *
 * @module
 */
import { BpfError, FeatureMissingError } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { ringbufSupported } from "./features.ts";
import { lastErrno, libc, type Mapping, mmap, munmap, pageSize } from "./libc.ts";
import { type BpfMap, possibleCpus } from "./map.ts";
import { PERF_TYPE, type PerfEvent, perfEventOpen } from "./perf_event.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLLIN = 1;
const EPOLL_EVENT_SIZE = 12; // struct epoll_event is packed on x86-64: u32 events, u64 data

const RINGBUF_BUSY = 0x80000000;
const RINGBUF_DISCARD = 0x40000000;
const RINGBUF_LEN_MASK = 0x3fffffff;
const RINGBUF_HDR = 8;

const PERF_COUNT_SW_BPF_OUTPUT = 10;
const PERF_RECORD_LOST = 2;
const PERF_RECORD_SAMPLE = 9;
/** Offsets in struct perf_event_mmap_page. */
const PERF_DATA_HEAD = 1024;
const PERF_DATA_TAIL = 1032;
/** Pages per CPU for perf buffers (as libbpf-tools' PERF_BUFFER_PAGES). */
const DEFAULT_PERF_PAGES = 64;

/** Called with each record; `data` is only valid during the call (copy what you keep). */
export type RecordHandler = (data: Uint8Array, cpu: number) => void;

/** A source of event records from BPF. */
export interface EventReader {
  /** Which kind of buffer the records come from. */
  readonly bufferKind: EventBufferKind;
  /**
   * Hands every record that is ready now to `onRecord`, in order, and frees
   * their space for the kernel. Returns how many records were read; stops
   * after about `max` records so a caller under a flood can flush and look around.
   */
  drain(onRecord: RecordHandler, max?: number): number;
  /** Resolves when records may be ready, or after `timeoutMs`. Never blocks the event loop. */
  wait(timeoutMs: number): Promise<void>;
  /**
   * Resolves after `ms` whether or not records arrive, so a flowing stream is read in
   * batches. Sleeps on a worker thread: waking Deno from there costs less CPU than a timer.
   */
  pause(ms: number): Promise<void>;
  /** Unmaps the buffers and closes the descriptors; the reader's creator calls it. */
  close(): void;
}

/** How records travel: a ring buffer, or per-CPU perf buffers on older kernels. */
export type EventBufferKind = "ringbuf" | "perf";

/**
 * The event buffer to use here: a ring buffer where the kernel has them,
 * perf buffers otherwise. `BPFTK_EVENT_BUFFER=perf` (or `ringbuf`) forces one,
 * for tests of the fallback.
 */
export function eventBufferKind(): EventBufferKind {
  const forced = Deno.env.get("BPFTK_EVENT_BUFFER");
  if (forced === "perf" || forced === "ringbuf") return forced;
  if (forced) throw new Error(`BPFTK_EVENT_BUFFER must be 'ringbuf' or 'perf', not '${forced}'`);
  return ringbufSupported() ? "ringbuf" : "perf";
}

// --- shared pieces ---------------------------------------------------------------

function mapShared(fd: number, bytes: number, prot: number, offset: number, what: string): Mapping {
  const m = mmap(fd, bytes, prot, MAP_SHARED, offset);
  if ("errno" in m) throw new BpfError(`mmap of ${what}`, m.errno);
  return m;
}

/** An epoll instance; the reader classes own it (their close() closes it). */
function epollCreate(what: string): number {
  const fd = libc().epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw new BpfError(`epoll_create1 for ${what}`, lastErrno());
  return fd;
}

function epollAdd(epfd: number, fd: number, data: number, what: string): void {
  const ev = new Uint8Array(EPOLL_EVENT_SIZE);
  const view = new DataView(ev.buffer);
  view.setUint32(0, EPOLLIN, true);
  view.setBigUint64(4, BigInt(data), true);
  if (libc().epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev) < 0) {
    throw new BpfError(`epoll_ctl(ADD) for ${what}`, lastErrno());
  }
}

/** Base of both readers: the epoll fd, the non-blocking wait, the mappings to undo. */
abstract class EpollReader extends OwnedFd {
  /** Kept alive here: a pending nonblocking epoll_wait writes into it. */
  readonly #events = new Uint8Array(EPOLL_EVENT_SIZE * 8);
  #pending: Promise<void> | undefined;
  protected readonly mappings: Mapping[] = [];

  constructor(label: string) {
    super(epollCreate(label), "event reader", label);
  }

  /**
   * One epoll_wait on a worker thread at a time: a caller that gave up on an
   * earlier wait (Ctrl-C won the race) shares the one still pending.
   */
  wait(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.#pending) {
      const ms = Math.max(0, Math.min(Math.ceil(timeoutMs), 2 ** 31 - 1));
      this.#pending = libc().epoll_wait(this.fd, this.#events, 8, ms).then(() => {
        this.#pending = undefined;
      });
    }
    return this.#pending;
  }

  /** poll(NULL, 0, ms) on a worker thread: see EventReader.pause. */
  pause(ms: number): Promise<void> {
    const timeout = Math.max(0, Math.min(Math.ceil(ms), 2 ** 31 - 1));
    return libc().poll(null, 0n, timeout).then(() => {});
  }

  override close(): void {
    if (this.closed) return;
    for (const m of this.mappings.splice(0)) munmap(m);
    super.close();
  }
}

// --- BPF ring buffer -----------------------------------------------------------------

/** Reads a BPF_MAP_TYPE_RINGBUF map. */
export class RingBufferReader extends EpollReader implements EventReader {
  readonly bufferKind = "ringbuf" as const;
  readonly #size: number;
  readonly #consumerPos: BigUint64Array;
  readonly #producerPos: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #headers: Uint32Array;
  #consumed: number;

  constructor(map: BpfMap) {
    if (map.spec.type !== "ringbuf") throw new Error(`map ${map.spec.name} is not a ring buffer`);
    super(`ring buffer ${map.spec.name}`);
    try {
      const page = pageSize();
      this.#size = map.spec.maxEntries;
      const consumer = mapShared(map.fd, page, PROT_READ | PROT_WRITE, 0, this.label);
      this.mappings.push(consumer);
      const producer = mapShared(map.fd, page + 2 * this.#size, PROT_READ, page, this.label);
      this.mappings.push(producer);
      this.#consumerPos = new BigUint64Array(consumer.buffer, 0, 1);
      this.#producerPos = new BigUint64Array(producer.buffer, 0, 1);
      this.#data = new Uint8Array(producer.buffer, page, 2 * this.#size);
      this.#headers = new Uint32Array(producer.buffer, page, (2 * this.#size) / 4);
      this.#consumed = Number(Atomics.load(this.#consumerPos, 0));
      epollAdd(this.fd, map.fd, 0, this.label);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  drain(onRecord: RecordHandler, max = Infinity): number {
    if (this.closed) return 0;
    let count = 0;
    let pos = this.#consumed;
    try {
      while (count < max) {
        const produced = Number(Atomics.load(this.#producerPos, 0));
        if (pos >= produced) break;
        while (pos < produced && count < max) {
          const at = pos % this.#size;
          const header = Atomics.load(this.#headers, at >>> 2);
          if ((header & RINGBUF_BUSY) !== 0) return count; // still being written
          const len = header & RINGBUF_LEN_MASK;
          pos += (len + RINGBUF_HDR + 7) & ~7;
          if ((header & RINGBUF_DISCARD) === 0) {
            count++;
            onRecord(this.#data.subarray(at + RINGBUF_HDR, at + RINGBUF_HDR + len), -1);
          }
        }
        this.#publish(pos);
      }
      return count;
    } finally {
      this.#publish(pos);
    }
  }

  /** Gives the space up to `pos` back to the kernel. */
  #publish(pos: number): void {
    if (pos === this.#consumed || this.closed) return;
    this.#consumed = pos;
    Atomics.store(this.#consumerPos, 0, BigInt(pos));
  }
}

// --- perf buffers ---------------------------------------------------------------------

interface CpuBuffer {
  cpu: number;
  meta: BigUint64Array;
  data: Uint8Array;
  view: DataView;
  tail: number;
}

/** Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY through one perf buffer per online CPU. */
export class PerfBufferReader extends EpollReader implements EventReader {
  readonly bufferKind = "perf" as const;
  readonly #cpus: CpuBuffer[] = [];
  /** The perf events this reader opened (one per CPU), closed with it. */
  readonly #events: PerfEvent[] = [];
  readonly #dataBytes: number;
  /** A record that wraps the end of a perf buffer is copied here first. */
  #scratch = new Uint8Array(256);
  /** PERF_RECORD_LOST totals; the BPF side's own counter already includes these drops. */
  kernelLost = 0;

  constructor(map: BpfMap, pages = DEFAULT_PERF_PAGES) {
    if (map.spec.type !== "perf_event_array") {
      throw new Error(`map ${map.spec.name} is not a perf_event_array`);
    }
    if (pages <= 0 || (pages & (pages - 1)) !== 0) {
      throw new Error(`perf buffer pages must be a power of two, got ${pages}`);
    }
    super(`perf buffer ${map.spec.name}`);
    const page = pageSize();
    this.#dataBytes = pages * page;
    try {
      const cpus = Math.min(possibleCpus(), map.spec.maxEntries);
      for (let cpu = 0; cpu < cpus; cpu++) {
        let event: PerfEvent;
        try {
          event = perfEventOpen(
            {
              type: PERF_TYPE.SOFTWARE,
              config: PERF_COUNT_SW_BPF_OUTPUT,
              sample: 1,
              sampleRaw: true,
            },
            -1,
            cpu,
          );
        } catch (e) {
          if (e instanceof BpfError && e.errno === 19) continue; // ENODEV: CPU offline
          throw e;
        }
        this.#events.push(event); // owned from here: close() closes it, even if setup fails
        const m = mapShared(
          event.fd,
          page + this.#dataBytes,
          PROT_READ | PROT_WRITE,
          0,
          this.label,
        );
        this.mappings.push(m);
        const meta = new BigUint64Array(m.buffer, 0, page / 8);
        const data = new Uint8Array(m.buffer, page, this.#dataBytes);
        const key = new Uint8Array(4), value = new Uint8Array(4);
        new DataView(key.buffer).setUint32(0, cpu, true);
        new DataView(value.buffer).setUint32(0, event.fd, true);
        map.update(key, value);
        epollAdd(this.fd, event.fd, cpu, this.label);
        this.#cpus.push({
          cpu,
          meta,
          data,
          view: new DataView(m.buffer, page, this.#dataBytes),
          tail: Number(Atomics.load(meta, PERF_DATA_TAIL / 8)),
        });
      }
      if (this.#cpus.length === 0) throw new FeatureMissingError("no CPU accepted a perf buffer");
    } catch (e) {
      this.close();
      throw e;
    }
  }

  drain(onRecord: RecordHandler, max = Infinity): number {
    if (this.closed) return 0;
    let count = 0;
    for (const b of this.#cpus) count += this.#drainCpu(b, onRecord, max - count);
    return count;
  }

  #drainCpu(b: CpuBuffer, onRecord: RecordHandler, max: number): number {
    const size = this.#dataBytes;
    let count = 0;
    let tail = b.tail;
    try {
      const head = Number(Atomics.load(b.meta, PERF_DATA_HEAD / 8));
      while (tail < head && count < max) {
        const at = tail % size;
        // Records are 8-byte aligned and the buffer a whole number of pages:
        // the 8-byte header never wraps, the body may.
        const type = b.view.getUint32(at, true);
        const recordSize = b.view.getUint16(at + 6, true);
        if (recordSize === 0) break; // corrupt: stop rather than spin
        const record = this.#contiguous(b, at, recordSize);
        const rv = new DataView(record.buffer, record.byteOffset, record.byteLength);
        if (type === PERF_RECORD_SAMPLE) {
          const rawSize = rv.getUint32(8, true);
          count++;
          onRecord(record.subarray(12, 12 + rawSize), b.cpu);
        } else if (type === PERF_RECORD_LOST) {
          this.kernelLost += Number(rv.getBigUint64(16, true));
        }
        tail += recordSize;
      }
    } finally {
      if (tail !== b.tail && !this.closed) {
        b.tail = tail;
        Atomics.store(b.meta, PERF_DATA_TAIL / 8, BigInt(tail));
      }
    }
    return count;
  }

  /** The record's bytes in one piece (a view when it does not wrap, else a copy). */
  #contiguous(b: CpuBuffer, at: number, n: number): Uint8Array {
    const size = this.#dataBytes;
    if (at + n <= size) return b.data.subarray(at, at + n);
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(n * 2);
    const first = size - at;
    this.#scratch.set(b.data.subarray(at, size), 0);
    this.#scratch.set(b.data.subarray(0, n - first), first);
    return this.#scratch.subarray(0, n);
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    for (const event of this.#events) event.close();
  }
}

/** Opens the reader that matches the map: ring buffer or perf buffers. */
export function openEventReader(map: BpfMap, opts: { perfPages?: number } = {}): EventReader {
  return map.spec.type === "ringbuf"
    ? new RingBufferReader(map)
    : new PerfBufferReader(map, opts.perfPages);
}

// --- lost events -------------------------------------------------------------------------

/**
 * The BPF side's per-CPU lost-event counter (a percpu_array[1] of u64), read
 * as increases since the previous call.
 */
export class LostCounter {
  readonly #seen: number[] = [];
  /** `map` is the channel's lost counter (EventsDef.lost, created). */
  constructor(readonly map: BpfMap) {}

  /** Per CPU, how many events were lost since the last call (only CPUs with losses). */
  poll(): { cpu: number; lost: number }[] {
    const value = this.map.lookup(new Uint8Array(4));
    if (!value) return [];
    const view = new DataView(value.buffer);
    const out: { cpu: number; lost: number }[] = [];
    for (let cpu = 0; cpu * 8 < value.length; cpu++) {
      const total = Number(view.getBigUint64(cpu * 8, true));
      const delta = total - (this.#seen[cpu] ?? 0);
      this.#seen[cpu] = total;
      if (delta > 0) out.push({ cpu, lost: delta });
    }
    return out;
  }

  /** Everything lost so far, all CPUs. */
  get total(): number {
    return this.#seen.reduce((a, b) => a + b, 0);
  }
}
