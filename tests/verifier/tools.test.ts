/**
 * Every program of every tool (default build and the flag variants that
 * change the programs), as built for this kernel: accepted by our verifier
 * and by the kernel. Programs come from each tool's declaration (bpftk.ts
 * TOOLS), built in this process for every variant it declares.
 */
import { deepEqual, ok } from "node:assert/strict";
import { encode } from "../../bytecode/encode.ts";
import { Btf } from "../../lib/btf/btf.ts";
import { tpBtfTarget } from "../../lib/btf/tp_btf.ts";
import { BpfLoadError } from "../../lib/kernel/errors.ts";
import { createMap, possibleCpus } from "../../lib/kernel/map.ts";
import { loadProgram } from "../../lib/kernel/program.ts";
import {
  formatDiagnostic,
  type VerifiableProgram,
  verifyProgram,
} from "../../lib/verifier/built.ts";
import type { MapInfo } from "../../lib/verifier/mod.ts";
import { kernelTest } from "../support/kernel.ts";
import { TOOLS } from "../../bpftk.ts";

interface Built {
  tool: string;
  args: string[];
  programs: VerifiableProgram[];
}

let built: Built[] | undefined;

/** Every kernel tool's declared variants, built in this process from its declaration. */
async function buildAll(): Promise<Built[]> {
  if (built) return built;
  built = [];
  for (const [name, load] of Object.entries(TOOLS)) {
    const { tool } = await load();
    if (!tool.kernel) continue;
    for (const args of tool.variants) {
      built.push({ tool: name, args, programs: tool.programs(args) });
    }
  }
  return built;
}

Deno.test({
  // Building reads tracepoint layouts from tracefs, which only root may read: a kernel test.
  ...kernelTest("tools: every program of every tool passes our verifier"),
  async fn() {
    const all = await buildAll();
    const btf = Btf.vmlinux();
    const cpus = possibleCpus();
    const rejected: string[] = [];
    let n = 0, insns = 0, ms = 0;
    for (const b of all) {
      for (const p of b.programs) {
        const t0 = performance.now();
        const r = verifyProgram(p, btf, cpus);
        ms += performance.now() - t0;
        n++;
        insns += p.insns.length;
        for (const d of r.diagnostics) {
          rejected.push(`${b.tool} ${b.args.join(" ")}: ${formatDiagnostic(p.name, d)}`);
        }
      }
    }
    console.log(`${n} programs, ${insns} instructions, verified in ${ms.toFixed(1)} ms`);
    ok(n > 0);
    deepEqual(rejected, []);
  },
});

Deno.test({
  ...kernelTest("tools: every program of every tool loads into the kernel"),
  ignore: kernelTest("").ignore,
  async fn() {
    const all = await buildAll();
    const failures: string[] = [];
    const seen = new Set<string>();
    for (const b of all) {
      for (const p of b.programs) {
        const key = [...encode(p.insns)].join(",");
        if (seen.has(key)) continue;
        seen.add(key);
        const maps = new Map<string, ReturnType<typeof createMap>>();
        const insns = p.insns.map((i) => ({ ...i }));
        try {
          for (const r of p.mapRefs) {
            const m: MapInfo = r.map;
            const k = JSON.stringify(m);
            if (!maps.has(k)) {
              maps.set(k, createMap({ ...m, name: m.name ?? "t", flags: m.flags }));
            }
            insns[r.index].imm = maps.get(k)!.fd;
          }
          const prog = loadProgram({
            name: p.name,
            type: p.type,
            insns,
            attachBtfId: p.type === "tp_btf" && p.attach.name
              ? tpBtfTarget(p.attach.name).typedefId
              : undefined,
          });
          prog.close();
        } catch (e) {
          const why = e instanceof BpfLoadError
            ? e.log.trim().split("\n").slice(-3).join(" | ")
            : String(e);
          failures.push(`${b.tool} ${b.args.join(" ")} ${p.name}: ${why}`);
        } finally {
          for (const m of maps.values()) m.close();
        }
      }
    }
    deepEqual(failures, []);
  },
});
