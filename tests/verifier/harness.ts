/**
 * Runs one program through our verifier and through the kernel's (loaded as
 * root, then closed), so tests can compare the two verdicts.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import type { ProgTypeName } from "../../bytecode/prog_types.ts";
import { Btf } from "../../lib/btf/btf.ts";
import { tpBtfTarget } from "../../lib/btf/tp_btf.ts";
import { BpfLoadError } from "../../lib/kernel/errors.ts";
import { type BpfMap, createMap, possibleCpus } from "../../lib/kernel/map.ts";
import { loadProgram } from "../../lib/kernel/program.ts";
import { ctxArgsFromTpBtf, kernelTypesFromBtf } from "../../lib/verifier/btf_types.ts";
import type { KernelTypes, MapInfo, VerifyOptions, VerifyResult } from "../../lib/verifier/mod.ts";
import { verify } from "../../lib/verifier/mod.ts";

/** A program plus what it runs against; maps are numbered, fds are patched in at load time. */
export interface Case {
  name: string;
  progType: ProgTypeName;
  insns: Insn[];
  /** Corpus maps by number. */
  maps?: MapInfo[];
  /** `lddw` map loads: logical index and corpus map number. */
  mapRefs?: { index: number; map: number }[];
  ctxSize?: number;
  /** tp_btf: the tracepoint, e.g. "sched_switch". */
  tpBtf?: string;
  license?: string;
}

/** The kernel's verdict. */
export interface KernelVerdict {
  ok: boolean;
  errno?: number;
  log?: string;
}

let btf: Btf | undefined;
let cpus: number | undefined;
let kernelTypes: KernelTypes | undefined;

/** vmlinux BTF and the verifier's view of it (loaded once). */
export function vmlinux(): { btf: Btf; kernelTypes: KernelTypes } {
  btf ??= Btf.vmlinux();
  kernelTypes ??= kernelTypesFromBtf(btf);
  return { btf, kernelTypes };
}

/** Verifier options for a case (tp_btf argument types come from vmlinux BTF). */
export function optionsFor(c: Case): VerifyOptions {
  const opts: VerifyOptions = {
    progType: c.progType,
    ctxSize: c.ctxSize,
    license: c.license,
    possibleCpus: cpus ??= possibleCpus(),
    mapRefs: (c.mapRefs ?? []).map((r) => ({ index: r.index, map: mapOf(c, r.map) })),
  };
  const { btf, kernelTypes } = vmlinux();
  opts.kernelTypes = kernelTypes; // bpf_get_current_task_btf works in every tracing type
  if (c.progType === "tp_btf") {
    opts.ctxArgs = ctxArgsFromTpBtf(
      btf,
      tpBtfTarget(c.tpBtf ?? "sched_switch", btf),
      c.tpBtf ?? "sched_switch",
    );
  }
  return opts;
}

function mapOf(c: Case, n: number): MapInfo {
  const m = c.maps?.[n];
  if (!m) throw new Error(`case ${c.name}: map ${n} is not declared`);
  return m;
}

/** Our verdict. */
export function ours(c: Case): VerifyResult {
  return verify(c.insns, optionsFor(c));
}

const mapCache = new Map<string, BpfMap>();

function realMap(info: MapInfo): BpfMap {
  const key = `${info.type}:${info.keySize}:${info.valueSize}:${info.maxEntries}:${
    info.flags ?? 0
  }`;
  let m = mapCache.get(key);
  if (!m) {
    m = createMap({
      name: "vt_" + info.type.slice(0, 12),
      type: info.type,
      keySize: info.keySize,
      valueSize: info.valueSize,
      maxEntries: info.maxEntries,
      flags: info.flags,
    });
    mapCache.set(key, m);
  }
  return m;
}

/** Closes the maps the harness created. */
export function closeHarnessMaps(): void {
  for (const m of mapCache.values()) m.close();
  mapCache.clear();
}

/** Loads the case into the kernel (as root) and closes it again. */
export function kernel(c: Case): KernelVerdict {
  const insns = c.insns.map((i) => ({ ...i }));
  for (const r of c.mapRefs ?? []) insns[r.index].imm = realMap(mapOf(c, r.map)).fd;
  let attachBtfId: number | undefined;
  if (c.progType === "tp_btf") {
    attachBtfId = tpBtfTarget(c.tpBtf ?? "sched_switch", vmlinux().btf).typedefId;
  }
  try {
    const prog = loadProgram({
      name: "vt_" + c.name.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 12),
      type: c.progType,
      insns,
      license: c.license ?? "GPL",
      attachBtfId,
    });
    prog.close();
    return { ok: true };
  } catch (e) {
    if (e instanceof BpfLoadError) return { ok: false, errno: e.errno, log: e.log };
    if (e instanceof RangeError) return { ok: false, errno: 22, log: `encode: ${e.message}` };
    throw e;
  }
}

/** The kernel log's last meaningful line (its verdict), for messages. */
export function lastLogLine(log: string | undefined): string {
  const lines = (log ?? "").trim().split("\n").filter((l) =>
    l && !l.startsWith("processed ") && !l.startsWith("verification time")
  );
  return lines[lines.length - 1] ?? "";
}
