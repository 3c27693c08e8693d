/**
 * The stack tools' counts as a pprof profile (profile.proto, gzipped), for
 * `go tool pprof`, Pyroscope, Parca and other pprof stores.
 *
 * - Sample types: profile: samples/count and cpu/nanoseconds (samples x the
 *   sampling period); offcputime: time/nanoseconds (its microseconds x 1000;
 *   the number of off-CPU events is not counted, so there is no count type).
 * - Each counted (process, user stack, kernel stack) is one sample, its
 *   locations innermost first: the kernel frames (as the text report shows
 *   them: the tracing machinery dropped), then the user frames; a stack the
 *   kernel lost is one frame named "[Missed Kernel Stack]" or "[Missed User
 *   Stack]", as in the folded output.
 * - Locations keep their addresses; those we named have a line whose
 *   function is that name (in the file it came from); addresses nothing
 *   resolves have no line, so a store can symbolize them from the mapping.
 * - Mappings: the kernel as "[kernel.kallsyms]" with the running kernel's
 *   build ID (/sys/kernel/notes); each user mapping a frame falls in with its
 *   range, file offset, path and the file's GNU build ID when it has one.
 * - Labels: pid and comm on every sample; tid when the tool keys by thread
 *   (offcputime) and it differs from the pid; the tool's own label (wakeuptime:
 *   the waker) as "label".
 *
 * Encoding: the npm package pprof-format (Datadog; pure JS, no dependencies,
 * MIT), gzip from node:zlib.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import {
  Function as PprofFunction,
  Label,
  Line,
  Location,
  Mapping,
  Profile,
  Sample,
  StringTable,
  ValueType,
} from "pprof-format";
import { isStackError, type StackTraces } from "../cli/stack_maps.ts";
import type { StackCount, StackReportOptions, StackSymbols } from "../cli/stack_report.ts";
import type { MapEntry } from "../symbols/user.ts";

/** What the values of a stack tool mean. */
export type PprofValues =
  /** Sampled on CPU: each value is a number of samples taken every `periodNs` (when known). */
  | { kind: "cpu"; periodNs?: number }
  /** Time off CPU: each value is a duration in `unitNs` nanoseconds (offcputime: 1000). */
  | { kind: "offcpu"; unitNs: number };

/** Everything a profile is made from: the tool's counts, traces and symbols. */
export interface PprofInput {
  counts: StackCount[];
  traces: StackTraces;
  symbols: StackSymbols;
  report: StackReportOptions;
  values: PprofValues;
  /** When counting began (ms since the epoch), and for how long (ms). */
  startMs: number;
  durationMs: number;
}

/** The kernel's text and modules: every address from here up. */
const KERNEL_START = 0xffff_8000_0000_0000n;
const KERNEL_LIMIT = 0xffff_ffff_ffff_ffffn;

/** The running kernel's GNU build ID, from /sys/kernel/notes; "" when unreadable. */
export function kernelBuildId(path = "/sys/kernel/notes"): string {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch {
    return "";
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const align = (n: number) => (n + 3) & ~3;
  for (let off = 0; off + 12 <= bytes.length;) {
    const namesz = v.getUint32(off, true), descsz = v.getUint32(off + 4, true);
    const type = v.getUint32(off + 8, true);
    const name = new TextDecoder().decode(bytes.subarray(off + 12, off + 12 + namesz));
    const desc = off + 12 + align(namesz);
    if (type === 3 && name.replace(/\0+$/, "") === "GNU") {
      return Array.from(bytes.subarray(desc, desc + descsz), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    }
    off = desc + align(descsz);
  }
  return "";
}

/** Builds the profile (not yet encoded). */
export function buildPprof(input: PprofInput): Profile {
  const strings = new StringTable();
  const s = (text: string) => strings.dedup(text);
  const mappings: Mapping[] = [];
  const locations: Location[] = [];
  const functions: PprofFunction[] = [];
  const functionIds = new Map<string, number>();
  const locationIds = new Map<string, number>();
  const userMappingIds = new Map<string, number>();
  let kernelMappingId: number | undefined;

  const functionId = (name: string, file: string): number => {
    const key = `${name}\0${file}`;
    let id = functionIds.get(key);
    if (id === undefined) {
      id = functions.length + 1;
      functions.push(
        new PprofFunction({ id, name: s(name), systemName: s(name), filename: s(file) }),
      );
      functionIds.set(key, id);
    }
    return id;
  };
  const location = (key: string, make: (id: number) => Location): number => {
    let id = locationIds.get(key);
    if (id === undefined) {
      id = locations.length + 1;
      locations.push(make(id));
      locationIds.set(key, id);
    }
    return id;
  };
  /** A frame with no address: a lost stack. */
  const pseudoFrame = (name: string) =>
    location(
      `pseudo:${name}`,
      (id) => new Location({ id, line: [new Line({ functionId: functionId(name, "") })] }),
    );

  const kernelMapping = (): number => {
    if (kernelMappingId === undefined) {
      kernelMappingId = mappings.length + 1;
      mappings.push(
        new Mapping({
          id: kernelMappingId,
          memoryStart: KERNEL_START,
          memoryLimit: KERNEL_LIMIT,
          fileOffset: 0,
          filename: s("[kernel.kallsyms]"),
          buildId: s(kernelBuildId()),
          hasFunctions: true,
        }),
      );
    }
    return kernelMappingId;
  };
  const kernelFrame = (addr: bigint, name: string) =>
    location(`k:${addr}`, (id) =>
      new Location({
        id,
        mappingId: kernelMapping(),
        address: addr,
        line: name === "[unknown]"
          ? []
          : [new Line({ functionId: functionId(name, "[kernel.kallsyms]") })],
      }));

  const userMapping = (pid: number, m: MapEntry): number => {
    const key = `${pid}:${m.start}:${m.end}:${m.offset}:${m.path}`;
    let id = userMappingIds.get(key);
    if (id === undefined) {
      id = mappings.length + 1;
      let buildId = "";
      if (m.path.startsWith("/")) {
        const range = `${m.start.toString(16)}-${m.end.toString(16)}`;
        const file = input.symbols.user.files.open([
          `/proc/${pid}/map_files/${range}`,
          `/proc/${pid}/root${m.path.replace(/ \(deleted\)$/, "")}`,
          m.path.replace(/ \(deleted\)$/, ""),
        ]);
        buildId = file?.elf.buildId ?? "";
      }
      mappings.push(
        new Mapping({
          id,
          memoryStart: m.start,
          memoryLimit: m.end,
          fileOffset: m.offset,
          filename: s(m.path),
          buildId: s(buildId),
          hasFunctions: true,
        }),
      );
      userMappingIds.set(key, id);
    }
    return id;
  };
  const userFrame = (pid: number, addr: bigint): number => {
    const proc = input.symbols.user.process(pid);
    const m = mappingOf(proc.maps, Number(addr));
    const sym = proc.resolve(addr);
    return location(`u:${pid}:${addr}`, (id) =>
      new Location({
        id,
        ...(m ? { mappingId: userMapping(pid, m) } : {}),
        address: addr,
        line: sym ? [new Line({ functionId: functionId(sym.name, sym.module) })] : [],
      }));
  };

  const { report, values } = input;
  const samples: Sample[] = [];
  for (const c of input.counts) {
    const ids: number[] = [];
    if (report.kernel) {
      if (isStackError(c.kernelStackId)) ids.push(pseudoFrame("[Missed Kernel Stack]"));
      else if (c.kernelStackId >= 0) {
        const addrs = input.traces.get(c.kernelStackId);
        const names = input.symbols.kernel(addrs);
        let skip = 0;
        while (
          report.dropKernelFrame && skip < names.length && report.dropKernelFrame(names[skip])
        ) {
          skip++;
        }
        for (let i = skip; i < addrs.length; i++) ids.push(kernelFrame(addrs[i], names[i]));
      }
    }
    if (report.user) {
      if (isStackError(c.userStackId)) ids.push(pseudoFrame("[Missed User Stack]"));
      else if (c.userStackId >= 0) {
        for (const addr of input.traces.get(c.userStackId)) ids.push(userFrame(c.pid, addr));
      }
    }
    const label = [
      new Label({ key: s("pid"), num: c.pid }),
      new Label({ key: s("comm"), str: s(c.comm) }),
      ...(c.shownId !== c.pid ? [new Label({ key: s("tid"), num: c.shownId })] : []),
      ...(c.label !== undefined ? [new Label({ key: s("label"), str: s(c.label) })] : []),
    ];
    const value = values.kind === "offcpu"
      ? [c.value * values.unitNs]
      : values.periodNs === undefined
      ? [c.value]
      : [c.value, c.value * Math.round(values.periodNs)];
    samples.push(new Sample({ locationId: ids, value, label }));
  }

  const cpu = values.kind === "cpu" && values.periodNs !== undefined;
  const sampleType = values.kind === "offcpu"
    ? [new ValueType({ type: s("time"), unit: s("nanoseconds") })]
    : [
      new ValueType({ type: s("samples"), unit: s("count") }),
      ...(cpu ? [new ValueType({ type: s("cpu"), unit: s("nanoseconds") })] : []),
    ];
  return new Profile({
    sampleType,
    sample: samples,
    mapping: mappings,
    location: locations,
    function: functions,
    stringTable: strings,
    timeNanos: BigInt(Math.round(input.startMs)) * 1_000_000n,
    durationNanos: BigInt(Math.round(input.durationMs)) * 1_000_000n,
    ...(values.kind === "cpu" && values.periodNs !== undefined
      ? {
        periodType: new ValueType({ type: s("cpu"), unit: s("nanoseconds") }),
        period: Math.round(values.periodNs),
      }
      : {}),
  });
}

/** The profile, encoded and gzipped (what `go tool pprof` reads). */
export function encodePprof(profile: Profile): Uint8Array {
  return new Uint8Array(gzipSync(profile.encode()));
}

/** Writes the gzipped profile to `path`. */
export function writePprof(path: string, input: PprofInput): void {
  Deno.writeFileSync(path, encodePprof(buildPprof(input)));
}

function mappingOf(maps: MapEntry[], addr: number): MapEntry | undefined {
  let lo = 0, hi = maps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = maps[mid];
    if (addr < m.start) hi = mid - 1;
    else if (addr >= m.end) lo = mid + 1;
    else return m;
  }
  return undefined;
}
