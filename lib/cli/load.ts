/**
 * The Session and the loading code without our verifier, which is passed
 * in: lib/cli/session.ts gives loadAndAttach the real one, and the drivers'
 * start path (lib/cli/program_cache.ts) imports the verifier only when a
 * program was not verified before from the same bytes, so a start that hits
 * the program cache does not load the verifier's modules at all.
 *
 * @module
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

/**
 * The session's maps by declaration. A declaration that is not a key here is
 * found by name when one map has its name and shape: programs read back from
 * the program cache carry copies of the declarations, while a tool reads its
 * maps with the declarations it made itself (`session.maps.get(hist)`).
 */
export class SessionMaps extends Map<MapDef, BpfMap> {
  #byName(def: MapDef): BpfMap | undefined {
    for (const [own, map] of this) {
      if (
        own.name === def.name && own.type === def.type && own.keySize === def.keySize &&
        own.valueSize === def.valueSize && own.maxEntries === def.maxEntries &&
        (own.flags ?? 0) === (def.flags ?? 0)
      ) return map;
    }
    return undefined;
  }

  override get(def: MapDef): BpfMap | undefined {
    return super.get(def) ?? this.#byName(def);
  }

  override has(def: MapDef): boolean {
    return super.has(def) || this.#byName(def) !== undefined;
  }
}

/**
 * The loaded, attached state of a tool. It owns its kernel objects:
 * `close()` (or the end of a `using` scope) detaches the links, then unloads
 * the programs, then frees the maps.
 */
export class Session implements Disposable {
  /** Kernel map for each map the programs declared, to read or fill. */
  readonly maps: Map<MapDef, BpfMap> = new SessionMaps();
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

/** Our verifier's verdict on one program, as the loader needs it. */
export interface OurVerdict {
  ok: boolean;
  /** The error to throw when the kernel rejects the program too (ours names the DSL line). */
  rejection?: () => Error;
}

/**
 * Runs our verifier on `p` before it is loaded (printing under -v), or
 * returns undefined for a program it accepted before from the same bytes.
 */
export type VerifyHook = (p: BuiltProgram, verbose: boolean) => OurVerdict | undefined;

/** Replaces each map reference's placeholder with an fd (or any number, for dumps). */
export function patchMapFds(p: BuiltProgram, fdOf: (map: MapDef) => number): Insn[] {
  const insns = p.insns.slice();
  for (const ref of p.mapRefs) insns[ref.index] = patched(insns[ref.index], { imm: fdOf(ref.map) });
  return insns;
}

/**
 * Creates maps, loads and attaches every program, `verify` checking each
 * first. Throws on the first failure, releasing what was created.
 */
export function loadPrograms(
  programs: BuiltProgram[],
  opts: LoadOptions,
  verify: VerifyHook,
): Session {
  const t0 = performance.now();
  requireBpfPrivileges();
  const session = new Session();
  try {
    loadInto(session, programs, opts, verify);
  } catch (e) {
    session.close(); // a partial failure releases what was created
    throw e;
  }
  session.loadMs = performance.now() - t0;
  return session;
}

function loadInto(
  session: Session,
  programs: BuiltProgram[],
  opts: LoadOptions,
  verify: VerifyHook,
): void {
  const maps = session.maps;
  for (const p of programs) {
    for (const def of p.maps) {
      // by identity: two declarations are two maps, whatever their names
      if (!Map.prototype.has.call(maps, def)) maps.set(def, createMap({ ...def }));
    }
  }
  opts.initMaps?.(maps);
  for (const p of programs) {
    // Ours first, so a mistake is reported against the DSL line that made it.
    // The kernel keeps the last word: when only ours objects, the kernel is
    // asked anyway and the disagreement is reported with -v.
    const ours = verify(p, opts.verbose ?? false);
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
      if (e instanceof BpfLoadError && ours && !ours.ok && ours.rejection) throw ours.rejection();
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
      return [
        attachUprobe(prog, a.path, a.offset, {
          retprobe: a.retprobe,
          pid: a.pid,
          refCtrOffset: a.refCtrOffset,
        }),
      ];
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
