/** BPF maps: create, lookup, update, delete, iterate (batched where the kernel can). */
import { MAP_TYPE, type MapTypeName } from "../../bytecode/prog_types.ts";
import { BpfError } from "./errors.ts";
import { checkFd, OwnedFd } from "./fd.ts";
import { cString } from "./ffi.ts";
import { bpf } from "./libbpf.ts";
import { lastErrno, libc } from "./libc.ts";

/** What a map is: the same description the DSL declares and the verifier checks against. */
export interface MapSpec {
  /** Map name (the kernel keeps 15 characters). */
  name: string;
  /** Kernel map type. */
  type: MapTypeName;
  /** Key bytes. */
  keySize: number;
  /** Value bytes (per CPU, for per-CPU maps). */
  valueSize: number;
  /** Capacity in entries (for a ring buffer: its size in bytes). */
  maxEntries: number;
  /** BPF_F_* map_flags, e.g. BPF_F_NO_PREALLOC (1). */
  flags?: number;
}

/** bpf_map_update_elem's flag for "create or replace". */
const BPF_ANY = 0n;

const PERCPU = new Set<MapTypeName>(["percpu_hash", "percpu_array", "lru_percpu_hash"]);

/** The number of possible CPUs (the stride of per-CPU map values). */
export function possibleCpus(): number {
  return bpf().libbpf_num_possible_cpus();
}

/** A created map. Values of per-CPU maps are read as `possibleCpus()` values, 8-byte aligned. */
export class BpfMap extends OwnedFd {
  /** Bytes one lookup returns: valueSize, or per CPU rounded up to 8, times CPUs. */
  readonly valueBytes: number;
  /** Creates the map in the kernel; throws BpfError when the kernel refuses. */
  constructor(readonly spec: MapSpec) {
    const opts = new Uint8Array(48);
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, 48n, true); // sz
    view.setUint32(28, spec.flags ?? 0, true); // map_flags
    const fd = checkFd(
      bpf().bpf_map_create(
        MAP_TYPE[spec.type],
        cString(spec.name.slice(0, 15)),
        spec.keySize,
        spec.valueSize,
        spec.maxEntries,
        opts,
      ),
      (errno) => new BpfError(`creating ${spec.type} map ${spec.name}`, errno),
    );
    super(fd, "map", spec.name);
    this.valueBytes = PERCPU.has(spec.type)
      ? Math.ceil(spec.valueSize / 8) * 8 * possibleCpus()
      : spec.valueSize;
  }

  /** The value for `key`, or undefined when absent. */
  lookup(key: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | undefined {
    const value = new Uint8Array(this.valueBytes);
    const ret = bpf().bpf_map_lookup_elem(this.fd, key, value);
    if (ret === -2) return undefined; // ENOENT
    if (ret < 0) throw new BpfError(`lookup in map ${this.spec.name}`, -ret);
    return value;
  }

  /** Sets `key` to `value` (flags: BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2). */
  update(key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>, flags = BPF_ANY): void {
    const ret = bpf().bpf_map_update_elem(this.fd, key, value, flags);
    if (ret < 0) throw new BpfError(`update of map ${this.spec.name}`, -ret);
  }

  /** Deletes `key`; returns false when it was absent. */
  delete(key: Uint8Array<ArrayBuffer>): boolean {
    const ret = bpf().bpf_map_delete_elem(this.fd, key);
    if (ret === -2) return false;
    if (ret < 0) throw new BpfError(`delete from map ${this.spec.name}`, -ret);
    return true;
  }

  /** Every key, in the kernel's iteration order. */
  keys(): Uint8Array<ArrayBuffer>[] {
    const keys: Uint8Array<ArrayBuffer>[] = [];
    let prev: Uint8Array<ArrayBuffer> | null = null;
    for (;;) {
      const next = new Uint8Array(this.spec.keySize);
      const ret = bpf().bpf_map_get_next_key(this.fd, prev, next);
      if (ret === -2) return keys;
      if (ret < 0) throw new BpfError(`iterating map ${this.spec.name}`, -ret);
      keys.push(next);
      prev = next;
    }
  }

  /**
   * Every entry. Hash maps are read with one BPF_MAP_LOOKUP_BATCH call per
   * chunk where the kernel supports it; otherwise key by key.
   */
  entries(): [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>][] {
    if (this.spec.type.includes("hash")) {
      const batched = this.#lookupBatch();
      if (batched) return batched;
    }
    const out: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>][] = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) out.push([key, value]);
    }
    return out;
  }

  /** Deletes every key (between intervals, like the C tools' clear). */
  clear(): void {
    for (const key of this.keys()) this.delete(key);
  }

  #batchKeys?: Uint8Array<ArrayBuffer>;
  #batchValues?: Uint8Array<ArrayBuffer>;

  #lookupBatch(): [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>][] | undefined {
    const { keySize } = this.spec;
    const chunk = Math.max(1, Math.min(this.spec.maxEntries, 4096));
    const out: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>][] = [];
    const inBatch = new Uint8Array(Math.max(keySize, 8));
    const outBatch = new Uint8Array(Math.max(keySize, 8));
    const opts = new Uint8Array(24);
    new DataView(opts.buffer).setBigUint64(0, 24n, true);
    let first = true;
    // One pair of chunk buffers per map, reused by every read: an exporter
    // reads on each scrape, and fresh half-megabyte buffers each time made its
    // resident memory climb (the entries returned are copies).
    this.#batchKeys ??= new Uint8Array(chunk * keySize);
    this.#batchValues ??= new Uint8Array(chunk * this.valueBytes);
    const keys = this.#batchKeys, values = this.#batchValues;
    for (;;) {
      const count = new Uint32Array([chunk]);
      const ret = bpf().bpf_map_lookup_batch(
        this.fd,
        first ? null : inBatch,
        outBatch,
        keys,
        values,
        count,
        opts,
      );
      const n = count[0];
      if (ret < 0 && ret !== -2) {
        if (first && (ret === -22 || ret === -95 || ret === -524)) return undefined;
        throw new BpfError(`batch lookup in map ${this.spec.name}`, -ret);
      }
      for (let i = 0; i < n; i++) {
        out.push([
          keys.slice(i * keySize, (i + 1) * keySize),
          values.slice(i * this.valueBytes, (i + 1) * this.valueBytes),
        ]);
      }
      if (ret === -2) return out; // ENOENT: the last batch
      inBatch.set(outBatch);
      first = false;
    }
  }
}

/**
 * Creates a map, owned by the caller: release it with map.close() (or
 * `using`). Tools
 * declare maps with defineMap() and let loadAndAttach() create them; this is
 * for maps that user space fills or reads on its own.
 *
 * @example A hash of PIDs (needs root: not run as a doc test)
 * ```ts ignore
 * import { createMap } from "./map.ts";
 * const pids = createMap({
 *   name: "pids", type: "hash", keySize: 4, valueSize: 1, maxEntries: 1024,
 * });
 * const key = new Uint8Array(new Uint32Array([1234]).buffer);
 * pids.update(key, new Uint8Array([1]));
 * pids.lookup(key); // Uint8Array [1]
 * pids.close();
 * ```
 */
export function createMap(spec: MapSpec): BpfMap {
  return new BpfMap(spec);
}

const O_RDONLY_DIRECTORY = 0o200000; // O_RDONLY | O_DIRECTORY

/**
 * Puts the cgroup at `path` (a cgroup v2 directory) into slot 0 of a
 * cgroup_array map, for bpf_current_task_under_cgroup filters.
 */
export function setCgroup(map: BpfMap, path: string): void {
  const fd = libc().open(cString(path), O_RDONLY_DIRECTORY);
  if (fd < 0) {
    const errno = lastErrno();
    throw new BpfError(`opening cgroup ${path}`, errno, errno === 2 ? "no such cgroup" : undefined);
  }
  try {
    const value = new Uint8Array(4);
    new DataView(value.buffer).setUint32(0, fd, true);
    map.update(new Uint8Array(4), value);
  } catch (e) {
    if (e instanceof BpfError && e.errno === 9) {
      throw new BpfError(`using ${path} as a cgroup`, 9, "not a cgroup v2 directory");
    }
    throw e;
  } finally {
    libc().close(fd);
  }
}
