/**
 * The verifier corpus: small programs with the verdict expected from our
 * verifier (a diagnostic code, or "ok") and from the kernel.
 *
 * Hand-written cases live in `corpus/*.txt`:
 *
 * ```
 * === read-r2-before-write
 * type: tracepoint            (program type; default tracepoint)
 * expect: uninit-register     (our first diagnostic's code, or ok)
 * kernel: reject              (reject, the default for errors; accept; strict)
 * maps: hash 8 16 16          (comma-separated: type keySize valueSize maxEntries [flags])
 * ctxSize: 64 | tp: sched_switch | license: GPL
 * --
 * r0 = r2
 * exit
 * ```
 *
 * Cases the random generator found (disagreements) are saved as JSON in
 * `corpus/found/`, with their instructions verbatim.
 *
 * @module
 */

import type { Insn } from "../../bytecode/insn.ts";
import type { MapTypeName, ProgTypeName } from "../../bytecode/prog_types.ts";
import type { MapInfo } from "../../lib/verifier/mod.ts";
import { assemble } from "./asm.ts";
import type { Case } from "./harness.ts";

/** A corpus case with its expectations. */
export interface CorpusCase extends Case {
  /**
   * Our verifier's expected verdict: "ok", the first diagnostic's code, or
   * "error" (any rejection: for saved programs the kernel rejected and we
   * once accepted).
   */
  expect: string;
  /**
   * The kernel's expected verdict: "reject" (as root), "accept", or
   * "strict": accepted as root but rejected in the kernel's strict mode
   * (CAP_BPF without CAP_PERFMON), where it, like us, refuses uninitialized
   * stack reads and kernel addresses leaving the program.
   */
  kernel: KernelExpectation;
  /** Where it came from, for messages. */
  source: string;
  /** The assembly text (hand-written cases). */
  asm?: string;
}

/** Where the corpus lives. */
export const CORPUS_DIR = new URL("./corpus/", import.meta.url);
/** Where generator disagreements are saved. */
export const FOUND_DIR = new URL("./corpus/found/", import.meta.url);

function parseMaps(spec: string): MapInfo[] {
  return spec.split(",").map((s) => {
    const [type, k, v, n, flags] = s.trim().split(/\s+/);
    const info: MapInfo = {
      type: type as MapTypeName,
      keySize: Number(k),
      valueSize: Number(v),
      maxEntries: Number(n),
    };
    if (flags) info.flags = Number(flags);
    return info;
  });
}

/** Parses one corpus text file. */
export function parseCorpusText(text: string, source: string): CorpusCase[] {
  const cases: CorpusCase[] = [];
  const chunks = text.split(/^=== /m).slice(1);
  for (const chunk of chunks) {
    const nl = chunk.indexOf("\n");
    const name = chunk.slice(0, nl).trim();
    const rest = chunk.slice(nl + 1);
    const sep = rest.search(/^--\s*$/m);
    if (sep < 0) throw new Error(`${source}: case ${name} has no '--' line`);
    const header = rest.slice(0, sep);
    const body = rest.slice(sep).replace(/^--\s*\n?/, "");
    const h: Record<string, string> = {};
    for (const line of header.split("\n")) {
      const m = /^(\w+):\s*(.*)$/.exec(line.trim());
      if (m) h[m[1]] = m[2].trim();
    }
    const expect = h.expect ?? "ok";
    let assembled;
    try {
      assembled = assemble(body);
    } catch (e) {
      throw new Error(`${source}: case ${name}: ${(e as Error).message}`);
    }
    cases.push({
      name,
      source,
      asm: body,
      progType: (h.type ?? "tracepoint") as ProgTypeName,
      insns: assembled.insns,
      mapRefs: assembled.mapRefs,
      maps: h.maps ? parseMaps(h.maps) : [],
      ctxSize: h.ctxSize ? Number(h.ctxSize) : undefined,
      tpBtf: h.tp,
      license: h.license,
      expect,
      kernel: (h.kernel as KernelExpectation | undefined) ??
        (expect === "ok" ? "accept" : "reject"),
    });
  }
  return cases;
}

/** What the kernel is expected to do with a case. */
export type KernelExpectation = "accept" | "reject" | "strict";

/** A saved disagreement (JSON form). */
export interface FoundCase {
  name: string;
  progType: ProgTypeName;
  tpBtf?: string;
  insns: Insn[];
  maps: MapInfo[];
  mapRefs: { index: number; map: number }[];
  ctxSize?: number;
  expect: string;
  kernel: KernelExpectation;
  /** Disassembly and the kernel's last log line, for the reader. */
  disasm: string[];
  kernelLog: string;
  note: string;
}

/** Loads every corpus case (hand-written and found). */
export function loadCorpus(): CorpusCase[] {
  const out: CorpusCase[] = [];
  for (const e of [...Deno.readDirSync(CORPUS_DIR)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isFile || !e.name.endsWith(".txt")) continue;
    out.push(...parseCorpusText(Deno.readTextFileSync(new URL(e.name, CORPUS_DIR)), e.name));
  }
  let found: Deno.DirEntry[] = [];
  try {
    found = [...Deno.readDirSync(FOUND_DIR)];
  } catch {
    // no saved disagreements yet
  }
  for (const e of found.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    const f = JSON.parse(Deno.readTextFileSync(new URL(e.name, FOUND_DIR))) as FoundCase;
    out.push({ ...f, source: `found/${e.name}` });
  }
  return out;
}
