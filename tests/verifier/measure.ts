/**
 * Standalone measurements of the verifier (not part of the test suite):
 *
 * - `agreement`: generated programs on several seeds, ours against the
 *   kernel's verdict, false accepts and false rejects per program type
 *   (policy codes counted apart);
 * - `cost`: the verifier's time per program, cold (first pass in a fresh
 *   process) and warm (after three passes), for the verifier module given.
 *
 * ```
 * deno run -A tests/verifier/measure.ts agreement [other/lib/verifier/mod.ts] --seeds 1,2,3,4,5 --programs 20000
 * deno run -A tests/verifier/measure.ts cost [path/to/lib/verifier/mod.ts] --programs 2000
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generate, type GeneratedCase, type TaskFields } from "./generator.ts";
import { closeHarnessMaps, kernel, optionsFor, ours, vmlinux } from "./harness.ts";
import type { VerifyOptions, VerifyResult } from "../../lib/verifier/mod.ts";
import type { ProgramInput } from "../../lib/verifier/types.ts";
import { POLICY_CODES } from "./policy.ts";

function taskFields(): TaskFields {
  const { btf } = vmlinux();
  const f = (p: string) => btf.field("task_struct", p).offset;
  return {
    scalars: [[f("pid"), 4], [f("tgid"), 4], [f("prio"), 4], [f("flags"), 4]],
    pointers: [f("real_parent"), f("group_leader")],
    size: btf.sizeOf(btf.getId("task_struct", "STRUCT")),
  };
}

interface Row {
  programs: number;
  kernelAccepts: number;
  bothReject: number;
  falseAccepts: number;
  falseRejects: number;
  policyRejects: number;
  byCode: Record<string, number>;
}

async function agreement(seeds: number[], programs: number, modPath?: string): Promise<void> {
  // Another verifier (an older checkout's lib/verifier/mod.ts) may be judged instead of ours.
  const other = modPath
    ? (await import(new URL(modPath, `file://${Deno.cwd()}/`).href)).verify as VerifyFn
    : undefined;
  const judge = (c: GeneratedCase): VerifyResult => {
    if (!other) return ours(c);
    try {
      return other(c.insns, optionsFor(c));
    } catch (e) {
      const message = (e as Error).message;
      return {
        ok: false,
        processed: 0,
        diagnostics: [{ code: "invalid-opcode", index: 0, insn: "", message }],
      };
    }
  };
  const task = taskFields();
  const rows = new Map<string, Row>();
  const examples: string[] = [];
  try {
    for (const seed of seeds) {
      for (let n = 0; n < programs; n++) {
        const c = generate(seed, n, task);
        const o = judge(c), k = kernel(c);
        let row = rows.get(c.progType);
        if (!row) {
          row = {
            programs: 0,
            kernelAccepts: 0,
            bothReject: 0,
            falseAccepts: 0,
            falseRejects: 0,
            policyRejects: 0,
            byCode: {},
          };
          rows.set(c.progType, row);
        }
        row.programs++;
        if (k.ok) row.kernelAccepts++;
        if (!o.ok && !k.ok) row.bothReject++;
        if (o.ok && !k.ok) {
          row.falseAccepts++;
          if (examples.length < 20) examples.push(`false accept ${c.name} (${c.progType})`);
        }
        if (!o.ok && k.ok) {
          const code = o.diagnostics[0].code;
          if (POLICY_CODES.has(code)) row.policyRejects++;
          else {
            row.falseRejects++;
            row.byCode[code] = (row.byCode[code] ?? 0) + 1;
            if (examples.length < 20) {
              examples.push(
                `false reject ${c.name} (${c.progType}) ${code}: ${o.diagnostics[0].message}`,
              );
            }
          }
        }
      }
    }
  } finally {
    closeHarnessMaps();
  }
  console.log(`seeds ${seeds.join(",")}, ${programs} programs each`);
  console.log(
    "| type | programs | kernel accepts | both reject | false accepts | false rejects (excl. policy) | policy rejects | false rejects by code |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const total: Row = {
    programs: 0,
    kernelAccepts: 0,
    bothReject: 0,
    falseAccepts: 0,
    falseRejects: 0,
    policyRejects: 0,
    byCode: {},
  };
  for (const [type, r] of [...rows].sort()) {
    line(type, r);
    for (const k of ["programs", "kernelAccepts", "bothReject", "falseAccepts"] as const) {
      total[k] += r[k];
    }
    total.falseRejects += r.falseRejects;
    total.policyRejects += r.policyRejects;
    for (const [c, n] of Object.entries(r.byCode)) total.byCode[c] = (total.byCode[c] ?? 0) + n;
  }
  line("all", total);
  for (const e of examples) console.log(e);
}

function line(type: string, r: Row): void {
  // The rate is over the programs the kernel accepts that are not policy rejects.
  const base = r.kernelAccepts - r.policyRejects;
  const pct = ((100 * r.falseRejects) / Math.max(base, 1)).toFixed(2);
  console.log(
    `| ${type} | ${r.programs} | ${r.kernelAccepts} | ${r.bothReject} | ${r.falseAccepts} | ${r.falseRejects} (${pct}%) | ${r.policyRejects} | ${
      JSON.stringify(r.byCode)
    } |`,
  );
}

type VerifyFn = (p: ProgramInput, o: VerifyOptions) => VerifyResult;

async function cost(modPath: string | undefined, programs: number, seeds: number[]) {
  const mod = modPath
    ? await import(new URL(modPath, `file://${Deno.cwd()}/`).href)
    : await import("../../lib/verifier/mod.ts");
  const verifyFn = mod.verify as VerifyFn;
  const task = taskFields();
  const cases: { insns: ProgramInput; opts: VerifyOptions }[] = [];
  for (const seed of seeds) {
    for (let n = 0; n < programs; n++) {
      const c = generate(seed, n, task);
      cases.push({ insns: c.insns, opts: optionsFor(c) });
    }
  }
  const pass = () => {
    const t = performance.now();
    for (const c of cases) {
      try {
        verifyFn(c.insns, c.opts);
      } catch {
        // an old verifier may throw on what it does not know; it still cost time
      }
    }
    return ((performance.now() - t) * 1000) / cases.length;
  };
  const t0 = performance.now();
  try {
    verifyFn(cases[0].insns, cases[0].opts);
  } catch { /* see above */ }
  const first = (performance.now() - t0) * 1000;
  const cold = pass();
  pass();
  pass();
  const warm = pass();
  console.log(
    `${modPath ?? "lib/verifier/mod.ts"}: ${cases.length} programs; first call ${
      first.toFixed(0)
    } us; cold ${cold.toFixed(1)} us/program (first pass); warm ${
      warm.toFixed(1)
    } us/program (fourth pass)`,
  );
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      seeds: { type: "string", default: "1,2,3,4,5" },
      programs: { type: "string", default: "20000" },
    },
  });
  const seeds = values.seeds.split(",").map(Number);
  const programs = Number(values.programs);
  if (positionals[0] === "agreement") await agreement(seeds, programs, positionals[1]);
  else if (positionals[0] === "cost") await cost(positionals[1], programs, seeds);
  else console.error("usage: measure.ts agreement|cost [mod.ts] [--seeds 1,2] [--programs N]");
}
