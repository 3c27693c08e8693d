/**
 * From built programs to attached ones: check privileges, create the maps,
 * patch their fds into the programs, load (kernel verifier log captured),
 * attach. The Session returned owns everything created: close it (or let
 * a `using` scope end) and the links, programs and maps go.
 */
import { slotOffsets } from "../../bytecode/encode.ts";
import type { Insn } from "../../bytecode/insn.ts";
import type { BuiltProgram } from "../dsl/builder.ts";
import type { MapDef } from "../dsl/maps.ts";
import { patched } from "../dsl/origin.ts";
import {
  attachKprobe,
  attachRawTracepoint,
  attachSampling,
  attachTpBtf,
  attachTracepoint,
  attachUprobe,
  type Link,
} from "../kernel/attach.ts";
import { BpfLoadError } from "../kernel/errors.ts";
import { type BpfMap, createMap, possibleCpus } from "../kernel/map.ts";
import { requireBpfPrivileges } from "../kernel/privileges.ts";
import { type BpfProgram, loadProgram } from "../kernel/program.ts";
import { Btf } from "../btf/btf.ts";
import { formatDiagnostic, optionsForProgram } from "../verifier/built.ts";
import { verify } from "../verifier/verify.ts";
import type { VerifyResult } from "../verifier/types.ts";

/** Our verifier rejected a program that the kernel rejected too: its diagnostic, one line. */
export class ProgramRejected extends Error {
  constructor(readonly program: string, readonly result: VerifyResult) {
    super(formatDiagnostic(program, result.diagnostics[0]));
    this.name = "ProgramRejected";
  }
}

/** Runs our verifier on a built program (offline: no kernel, no root). */
export function verifyBuilt(p: BuiltProgram): VerifyResult {
  const opts = optionsForProgram(p, p.type === "tp_btf" ? Btf.vmlinux() : undefined);
  opts.possibleCpus = possibleCpus();
  opts.allowPointerLeaks = p.allowPointerLeaks ?? false;
  return verify(p.insns, opts);
}

/**
 * The loaded, attached state of a tool. It owns its kernel objects:
 * `close()` (or the end of a `using` scope) detaches the links, then unloads
 * the programs, then frees the maps.
 */
export class Session implements Disposable {
  /** Kernel map for each map the programs declared, to read or fill. */
  readonly maps = new Map<MapDef, BpfMap>();
  /** The loaded programs, in the order they were given. */
  readonly programs: BpfProgram[] = [];
  /** Attachments that keep the programs running until closed. */
  readonly links: Link[] = [];
  /** Milliseconds spent creating maps, loading and attaching. */
  loadMs = 0;

  /** Detaches everything, then unloads programs and frees maps; safe to call twice. */
  close(): void {
    for (const link of this.links) link.close();
    for (const prog of this.programs) prog.close();
    for (const map of this.maps.values()) map.close();
  }

  /** Stops the sampling or tracing but keeps the maps readable (stack tools symbolize after). */
  detach(): void {
    for (const link of this.links) link.close();
  }

  /** `using session = loadAndAttach(...)`: closed when the scope ends, however it ends. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** How loadAndAttach loads: verbosity, and maps to fill before attaching. */
export interface LoadOptions {
  /** Print each program's kernel verifier log to stderr (-v). */
  verbose?: boolean;
  /** Fills maps (filters, configuration) after they exist and before anything attaches. */
  initMaps?: (maps: Map<MapDef, BpfMap>) => void;
}

/** Replaces each map reference's placeholder with an fd (or any number, for dumps). */
export function patchMapFds(p: BuiltProgram, fdOf: (map: MapDef) => number): Insn[] {
  const insns = p.insns.slice();
  for (const ref of p.mapRefs) insns[ref.index] = patched(insns[ref.index], { imm: fdOf(ref.map) });
  return insns;
}

/**
 * Creates maps, loads and attaches every program. Throws on the first failure.
 * Our verifier runs first, so a mistake is reported against the DSL line.
 *
 * @example Count context switches for a second (needs root: not run as a doc test)
 * ```ts ignore
 * import { defineMap } from "../dsl/maps.ts";
 * import { tracepoint } from "../dsl/program.ts";
 * import { r10 } from "../dsl/registers.ts";
 * import { loadAndAttach } from "./session.ts";
 *
 * const switches = defineMap({
 *   name: "switches", type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1,
 * });
 * const p = tracepoint("sched", "sched_switch");
 * const key = p.stack(4);
 * p.store("u32", r10, key, 0).counterAdd(switches, key, 1).ret(0);
 * using session = loadAndAttach([p.build()]); // detached, unloaded, freed at scope end
 * await new Promise((resolve) => setTimeout(resolve, 1000));
 * const value = session.maps.get(switches)!.lookup(new Uint8Array(4))!;
 * const perCpu = new BigUint64Array(value.buffer); // a per-CPU map: one u64 per CPU
 * console.log(perCpu.reduce((a, b) => a + b, 0n), "context switches");
 * ```
 */
export function loadAndAttach(programs: BuiltProgram[], opts: LoadOptions = {}): Session {
  const t0 = performance.now();
  requireBpfPrivileges();
  const session = new Session();
  try {
    loadInto(session, programs, opts);
  } catch (e) {
    session.close(); // a partial failure releases what was created
    throw e;
  }
  session.loadMs = performance.now() - t0;
  return session;
}

function loadInto(session: Session, programs: BuiltProgram[], opts: LoadOptions): void {
  const maps = session.maps;
  for (const p of programs) {
    for (const def of p.maps) {
      if (!maps.has(def)) maps.set(def, createMap({ ...def }));
    }
  }
  opts.initMaps?.(maps);
  for (const p of programs) {
    // Ours first, so a mistake is reported against the DSL line that made it.
    // The kernel keeps the last word: when only ours objects, the kernel is
    // asked anyway and the disagreement is reported with -v.
    const v0 = performance.now();
    const ours = verifyBuilt(p);
    if (opts.verbose) {
      const ms = (performance.now() - v0).toFixed(2);
      console.error(
        `our verifier: ${p.name}: ${
          ours.ok ? "accepted" : "rejected"
        } (${p.insns.length} insns, ${ms} ms)`,
      );
      for (const d of ours.diagnostics) {
        console.error(`our verifier: ${formatDiagnostic(p.name, d)}`);
      }
    }
    const insns = patchMapFds(p, (def) => maps.get(def)!.fd);
    let prog: BpfProgram;
    try {
      prog = loadProgram({
        name: p.name,
        type: p.type,
        insns,
        attachBtfId: p.attach.kind === "tp_btf" ? p.attach.btfId : undefined,
        logLevel: opts.verbose ? 1 : 0,
      });
    } catch (e) {
      if (e instanceof BpfLoadError && opts.verbose) {
        console.error(annotateVerifierLog(e.log, insns));
      }
      if (e instanceof BpfLoadError && !ours.ok) throw new ProgramRejected(p.name, ours);
      throw e;
    }
    if (opts.verbose) console.error(`--- ${p.name}: kernel verifier log ---\n${prog.verifierLog}`);
    session.programs.push(prog);
    session.links.push(...attach(prog, p));
  }
}

function attach(prog: BpfProgram, p: BuiltProgram): Link[] {
  const a = p.attach;
  switch (a.kind) {
    case "tracepoint":
      return [attachTracepoint(prog, a.id, `${a.category}:${a.name}`)];
    case "tp_btf":
      return [attachTpBtf(prog, a.name)];
    case "raw_tracepoint":
      return [attachRawTracepoint(prog, a.name)];
    case "kprobe":
      return [attachKprobe(prog, a.func, a.retprobe)];
    case "uprobe":
      return [attachUprobe(prog, a.path, a.offset, { retprobe: a.retprobe, pid: a.pid })];
    case "perf_event":
      return attachSampling(prog, {
        frequency: a.frequency,
        period: a.period,
        cpus: a.cpus ?? onlineCpus(),
        pid: a.pid,
      });
  }
}

/** CPUs that are online now (/sys/devices/system/cpu/online, e.g. "0-1,4"). */
export function onlineCpus(): number[] {
  try {
    const text = Deno.readTextFileSync("/sys/devices/system/cpu/online").trim();
    return text.split(",").flatMap((range) => {
      const [lo, hi] = range.split("-").map(Number);
      return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, i) => lo + i);
    });
  } catch {
    return Array.from({ length: possibleCpus() }, (_, i) => i);
  }
}

/**
 * The kernel verifier log with each line that names an instruction ("12: (bf) ...")
 * followed by the DSL line that emitted it.
 */
export function annotateVerifierLog(log: string, insns: Insn[]): string {
  const originBySlot = new Map<number, string>();
  slotOffsets(insns).forEach((slot, i) => {
    const origin = insns[i].origin;
    if (origin) originBySlot.set(slot, origin);
  });
  return log.split("\n").map((line) => {
    const m = line.match(/^(\d+): \(/);
    const origin = m && originBySlot.get(Number(m[1]));
    return origin ? `${line}    ; ${origin}` : line;
  }).join("\n");
}
