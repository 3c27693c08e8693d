/**
 * Differential test: thousands of generated programs, each verified by ours
 * and loaded into the kernel. Ours must never accept a program the kernel
 * rejects; programs the kernel accepts and we reject (our stricter policies,
 * or less precise ranges) must stay under 5%. Disagreements are saved to the
 * corpus (corpus/found/).
 *
 * VERIFIER_SEED and VERIFIER_PROGRAMS choose the run (default: seed 1, 2500).
 */
import { ok } from "node:assert/strict";
import { disassemble } from "../../bytecode/disasm.ts";
import { encode } from "../../bytecode/encode.ts";
import { kernelTest } from "../support/kernel.ts";
import { FOUND_DIR, type FoundCase, loadCorpus } from "./corpus.ts";
import { generate, type GeneratedCase, type TaskFields } from "./generator.ts";
import {
  closeHarnessMaps,
  kernel,
  type KernelVerdict,
  lastLogLine,
  ours,
  vmlinux,
} from "./harness.ts";

const SEED = Number(Deno.env.get("VERIFIER_SEED") ?? 1);
const PROGRAMS = Number(Deno.env.get("VERIFIER_PROGRAMS") ?? 2500);
const MAX_FALSE_REJECT_RATE = 0.05;
/** Saved false rejects per diagnostic code (they are expected; a few document them). */
const SAVED_FALSE_REJECTS_PER_CODE = 3;

function taskFields(): TaskFields {
  const { btf } = vmlinux();
  const f = (p: string) => btf.field("task_struct", p).offset;
  return {
    scalars: [[f("pid"), 4], [f("tgid"), 4], [f("prio"), 4], [f("flags"), 4]],
    pointers: [f("real_parent"), f("group_leader")],
    size: btf.sizeOf(btf.getId("task_struct", "STRUCT")),
  };
}

async function hashOf(c: GeneratedCase): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(encode(c.insns)));
  return [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

async function save(
  c: GeneratedCase,
  expect: string,
  k: KernelVerdict,
  note: string,
): Promise<string> {
  const found: FoundCase = {
    name: c.name,
    progType: c.progType,
    tpBtf: c.tpBtf,
    insns: c.insns.map(({ code, dst, src, off, imm, imm2 }) =>
      imm2 === undefined ? { code, dst, src, off, imm } : { code, dst, src, off, imm, imm2 }
    ),
    maps: c.maps ?? [],
    mapRefs: c.mapRefs ?? [],
    expect,
    kernel: k.ok ? "accept" : "reject",
    disasm: disassemble(c.insns),
    kernelLog: lastLogLine(k.log),
    note: `${note}; recipe ${c.recipe.join(",")}`,
  };
  Deno.mkdirSync(FOUND_DIR, { recursive: true });
  const file = new URL(`${await hashOf(c)}.json`, FOUND_DIR);
  Deno.writeTextFileSync(file, JSON.stringify(found, null, 1) + "\n");
  return file.pathname;
}

Deno.test("generator: deterministic for a seed", () => {
  const a = generate(7, 3), b = generate(7, 3);
  ok(JSON.stringify(a.insns) === JSON.stringify(b.insns));
});

Deno.test(
  kernelTest(`differential: ${PROGRAMS} random programs (seed ${SEED}) against the kernel`),
  async () => {
    const task = taskFields();
    const savedByCode = new Map<string, number>();
    for (const c of loadCorpus()) {
      if (c.source.startsWith("found/") && c.kernel === "accept") {
        savedByCode.set(c.expect, (savedByCode.get(c.expect) ?? 0) + 1);
      }
    }
    let bothOk = 0, bothReject = 0, mutated = 0;
    const falseAccepts: string[] = [];
    const falseRejects = new Map<string, number>();
    let oursMs = 0, kernelMs = 0, processed = 0, slots = 0;
    try {
      for (let n = 0; n < PROGRAMS; n++) {
        const c = generate(SEED, n, task);
        if (c.recipe.some((r) => r.startsWith("mutate"))) mutated++;
        let t = performance.now();
        const o = ours(c);
        oursMs += performance.now() - t;
        processed += o.processed;
        slots += encode(c.insns).length / 8;
        t = performance.now();
        const k = kernel(c);
        kernelMs += performance.now() - t;
        if (o.ok && k.ok) bothOk++;
        else if (!o.ok && !k.ok) bothReject++;
        else if (o.ok) {
          const path = await save(c, "error", k, "false accept: the kernel rejects it");
          falseAccepts.push(
            `${c.name} (${c.progType}): kernel says "${lastLogLine(k.log)}"; saved ${path}`,
          );
        } else {
          const code = o.diagnostics[0].code;
          falseRejects.set(code, (falseRejects.get(code) ?? 0) + 1);
          if ((savedByCode.get(code) ?? 0) < SAVED_FALSE_REJECTS_PER_CODE) {
            savedByCode.set(code, (savedByCode.get(code) ?? 0) + 1);
            await save(c, code, k, `false reject: ${o.diagnostics[0].message}`);
          }
        }
      }
    } finally {
      closeHarnessMaps();
    }
    const fr = [...falseRejects.values()].reduce((a, b) => a + b, 0);
    const rate = fr / (fr + bothOk);
    console.log(
      `${PROGRAMS} programs (${mutated} with a nudged field): ${bothOk} accepted by both, ` +
        `${bothReject} rejected by both, ${falseAccepts.length} false accepts, ` +
        `${fr} false rejects (${(rate * 100).toFixed(2)}% of the programs the kernel accepts)`,
    );
    console.log(`false rejects by code: ${JSON.stringify(Object.fromEntries(falseRejects))}`);
    console.log(
      `ours: ${oursMs.toFixed(0)} ms for ${processed} simulated instructions ` +
        `(${
          ((oursMs * 1e6) / Math.max(processed, 1)).toFixed(0)
        } ns each, ${slots} program slots); ` +
        `kernel loads: ${kernelMs.toFixed(0)} ms`,
    );
    ok(falseAccepts.length === 0, `false accepts:\n${falseAccepts.join("\n")}`);
    ok(
      bothOk > PROGRAMS / 4 && bothReject > PROGRAMS / 8,
      "the generator makes both valid and invalid programs",
    );
    ok(
      rate < MAX_FALSE_REJECT_RATE,
      `false reject rate ${(rate * 100).toFixed(2)}% is not under 5%`,
    );
  },
);
