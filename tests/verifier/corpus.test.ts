/**
 * The corpus: every wrong program is rejected by our verifier with the
 * expected code and by the kernel; every valid program is accepted by both.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { DIAGNOSTIC_CODES } from "../../lib/verifier/mod.ts";
import { kernelTest } from "../support/kernel.ts";
import { type CorpusCase, loadCorpus } from "./corpus.ts";
import { closeHarnessMaps, kernel, lastLogLine, ours } from "./harness.ts";
import { strictKernel } from "./strict_kernel.ts";
import { bigPrograms } from "./big_programs.ts";
import { classesOf, INSN_CLASSES } from "./insn_classes.ts";

const corpus: CorpusCase[] = [...loadCorpus(), ...bigPrograms()];

function verdict(c: CorpusCase): string {
  const r = ours(c);
  return r.ok ? "ok" : r.diagnostics[0].code;
}

Deno.test("corpus: at least 3 kernel-rejected programs for every diagnostic code", () => {
  const missing: string[] = [];
  for (const code of DIAGNOSTIC_CODES) {
    const n = corpus.filter((c) => c.expect === code && c.kernel !== "accept").length;
    if (n < 3) missing.push(`${code} (${n})`);
  }
  deepEqual(missing, []);
  const written = corpus.filter((c) => !c.source.startsWith("found/"));
  const wrong = written.filter((c) => c.expect !== "ok" && c.kernel !== "accept");
  ok(wrong.length >= 60, `only ${wrong.length} wrong programs`);
  const found = corpus.length - written.length;
  console.log(
    `${wrong.length} wrong programs (${
      wrong.filter((c) => c.kernel === "strict").length
    } of them ` +
      `rejected by the kernel's strict mode only), ${written.length - wrong.length} valid or ` +
      `kernel-accepted ones, ${found} saved from the differential test`,
  );
});

Deno.test("corpus: a valid, kernel-accepted case for every instruction class", () => {
  const covered = new Set<string>();
  for (const c of corpus) {
    if (c.expect === "ok" && c.kernel === "accept") {
      for (const name of classesOf(c.insns)) covered.add(name);
    }
  }
  deepEqual(INSN_CLASSES.map(([name]) => name).filter((n) => !covered.has(n)), []);
});

Deno.test("corpus: our verifier gives the expected verdict", () => {
  const failures: string[] = [];
  for (const c of corpus) {
    const got = verdict(c);
    // Saved false rejects document where we are stricter than the kernel;
    // as our precision improves they may be accepted or fail elsewhere.
    const savedFalseReject = c.source.startsWith("found/") && c.kernel === "accept";
    if (savedFalseReject && got === "ok") {
      console.log(`${c.source} no longer disagrees with the kernel: it can be deleted`);
    }
    if (got !== c.expect && !savedFalseReject && !(c.expect === "error" && got !== "ok")) {
      const r = ours(c);
      failures.push(
        `${c.source}/${c.name}: expected ${c.expect}, got ${got}: ${
          r.diagnostics[0]?.message ?? ""
        }`,
      );
    }
  }
  deepEqual(failures, []);
});

Deno.test("corpus: diagnostics name the instruction and its slot", () => {
  for (const c of corpus) {
    const r = ours(c);
    for (const d of r.diagnostics) {
      ok(d.index >= 0, `${c.name}: index`);
      ok(d.message.length > 0, `${c.name}: message`);
      if (c.insns.length > 0 && d.code !== "too-complex") {
        ok(d.insn.length > 0, `${c.name}: insn text`);
      }
    }
  }
});

Deno.test(kernelTest("corpus: the kernel (as root) agrees"), () => {
  const failures: string[] = [];
  try {
    for (const c of corpus) {
      const k = kernel(c);
      const want = c.kernel === "reject" ? false : true;
      if (k.ok !== want) {
        failures.push(
          `${c.source}/${c.name}: kernel ${
            k.ok ? "accepted" : `rejected (${lastLogLine(k.log)})`
          }, expected ${c.kernel}`,
        );
      }
    }
  } finally {
    closeHarnessMaps();
  }
  deepEqual(failures, []);
});

Deno.test(
  kernelTest("corpus: the kernel's strict mode rejects what we refuse on policy"),
  async () => {
    const strict = corpus.filter((c) => c.kernel === "strict");
    ok(strict.length >= 9);
    for (const c of strict) {
      equal(
        c.progType,
        "socket_filter",
        `${c.name}: strict cases are socket filters`,
      );
    }
    const verdicts = await strictKernel(strict);
    const failures = strict.filter((_, i) => verdicts[i].ok).map((c) =>
      `${c.name}: accepted in strict mode`
    );
    deepEqual(failures, []);
  },
);
