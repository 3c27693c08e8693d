#!/usr/bin/env -S deno run -A
/**
 * `deno task verify`: verifies every tool's BPF programs with our verifier,
 * offline and without root, as they would be built for this kernel: each
 * tool's declaration (bpftk.ts) builds its default programs and those of
 * every variant it declares, in this process. Prints one line per program
 * and a summary `N programs verified, M rejected`; exits 1 when any is
 * rejected or cannot be built.
 *
 *     deno task verify [tool...]
 *
 * With `--cold`, measures instead what verifying adds to each tool's start:
 * the tool's programs (default flags) are verified once in each of several
 * fresh Deno processes, as lib/cli/session.ts does before loading them, and
 * the median time per tool is printed (`--runs=N`, default 9).
 *
 *     deno task verify --cold [--runs=N] [tool...]
 */
import { encode } from "../bytecode/encode.ts";
import { Btf } from "../lib/btf/btf.ts";
import { possibleCpus } from "../lib/kernel/map.ts";
import { tpBtfTarget } from "../lib/btf/tp_btf.ts";
import {
  formatDiagnostic,
  optionsForProgram,
  type VerifiableProgram,
  verifyProgram,
} from "../lib/verifier/built.ts";
import { verify } from "../lib/verifier/verify.ts";
import { TOOLS } from "../bpftk.ts";

/** The programs a tool builds with these arguments, in this process (no root needed). */
async function programsOf(tool: string, args: string[]): Promise<VerifiableProgram[]> {
  const { tool: t } = await TOOLS[tool]();
  try {
    return t.programs(args);
  } catch (e) {
    throw new Error(`${tool} ${args.join(" ")}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** Every tool that loads programs, and the flag sets it declares as variants. */
async function allTools(): Promise<string[]> {
  const names: string[] = [];
  for (const name of Object.keys(TOOLS)) {
    if ((await TOOLS[name]()).tool.kernel) names.push(name);
  }
  return names;
}

/**
 * In a fresh process: verifies the programs in `file` once, as a tool does at
 * start (vmlinux BTF and the tp_btf targets are already loaded by then: the
 * DSL used them to build the programs), and prints the milliseconds. Code
 * the tool's DSL shares with the verifier (BTF decoding, opcode tables) is
 * still cold here, so this is a little slower than inside the tool.
 */
function coldChild(file: string): void {
  const programs = JSON.parse(Deno.readTextFileSync(file)) as VerifiableProgram[];
  const btf = Btf.vmlinux();
  for (const p of programs) {
    if (p.type === "tp_btf" && p.attach.name) tpBtfTarget(p.attach.name, btf);
  }
  possibleCpus(); // libbpf is loaded by then too: the tool created its maps
  const t0 = performance.now();
  for (const p of programs) {
    const opts = optionsForProgram(p, p.type === "tp_btf" ? btf : undefined);
    opts.possibleCpus = possibleCpus();
    if (!verify(p.insns, opts).ok) throw new Error(`${p.name} is rejected`);
  }
  console.log((performance.now() - t0).toFixed(3));
}

/** Median and range of what verifying adds to each tool's start, over fresh processes. */
async function coldStart(tools: string[], runs: number): Promise<number> {
  const dir = Deno.makeTempDirSync({ prefix: "bpftk-verify-" });
  const self = new URL(import.meta.url).pathname;
  let failures = 0;
  try {
    for (const tool of tools) {
      let programs: VerifiableProgram[];
      try {
        programs = await programsOf(tool, []);
      } catch (e) {
        console.log(`skip   ${tool}: ${(e as Error).message}`);
        continue;
      }
      const file = `${dir}/${tool}.json`;
      Deno.writeTextFileSync(file, JSON.stringify(programs));
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", self, "--cold-child", file],
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (!out.success) {
          failures++;
          console.log(`ERROR  ${tool}: ${new TextDecoder().decode(out.stderr).trim()}`);
          break;
        }
        times.push(Number(new TextDecoder().decode(out.stdout).trim()));
      }
      if (!times.length) continue;
      times.sort((a, b) => a - b);
      const insns = programs.reduce((n, p) => n + p.insns.length, 0);
      console.log(
        `${tool.padEnd(15)} ${times[times.length >> 1].toFixed(2).padStart(6)} ms median ` +
          `(${times[0].toFixed(2)}-${times[times.length - 1].toFixed(2)}, ${runs} runs) ` +
          `for ${programs.length} programs, ${insns} instructions`,
      );
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  return failures ? 1 : 0;
}

async function main(): Promise<number> {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  if (Deno.args[0] === "--cold-child") {
    coldChild(Deno.args[1]);
    return 0;
  }
  if (Deno.args.includes("--cold")) {
    const runs = Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 9);
    return await coldStart(args.length ? args : await allTools(), runs);
  }
  const wanted = args.length ? args : await allTools();
  const btf = Btf.vmlinux();
  const cpus = possibleCpus();
  let verified = 0,
    rejected = 0,
    failedBuilds = 0,
    insnCount = 0,
    processed = 0,
    ms = 0;
  const perTool = new Map<string, number>();
  for (const tool of wanted) {
    const seen = new Set<string>();
    for (const args of (await TOOLS[tool]()).tool.variants) {
      let programs: VerifiableProgram[];
      try {
        programs = await programsOf(tool, args);
      } catch (e) {
        // Every declared variant must build here, offline: a failure is an error.
        failedBuilds++;
        console.log(`ERROR  ${tool}: ${(e as Error).message}`);
        continue;
      }
      for (const p of programs) {
        const key = `${p.name}:${[...encode(p.insns)].join(",")}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const t0 = performance.now();
        // as loadAndAttach does: a program that keeps kernel pointers on purpose says so
        const leaks = (p as { allowPointerLeaks?: boolean }).allowPointerLeaks ?? false;
        const r = leaks
          ? verify(p.insns, { ...optionsForProgram(p, btf, cpus), allowPointerLeaks: true })
          : verifyProgram(p, btf, cpus);
        const dt = performance.now() - t0;
        ms += dt;
        perTool.set(tool, (perTool.get(tool) ?? 0) + dt);
        verified++;
        insnCount += p.insns.length;
        processed += r.processed;
        const flags = args.length ? ` [${args.join(" ")}]` : "";
        const line = `${tool}${flags} ${p.name} (${p.type}, ${p.insns.length} insns, ${
          dt.toFixed(2)
        } ms)`;
        if (r.ok) console.log(`ok     ${line}`);
        else {
          rejected++;
          console.log(`REJECT ${line}`);
          for (const d of r.diagnostics) console.log(`       ${formatDiagnostic(p.name, d)}`);
        }
      }
    }
  }
  console.log(
    `${verified} programs verified, ${rejected} rejected` +
      (failedBuilds ? `, ${failedBuilds} builds failed` : ""),
  );
  const worst = Math.max(0, ...perTool.values());
  console.log(
    `verify time: ${ms.toFixed(1)} ms for ${insnCount} instructions ` +
      `(${((ms * 1e6) / Math.max(insnCount, 1)).toFixed(0)} ns per instruction, ` +
      `${((ms * 1e6) / Math.max(processed, 1)).toFixed(0)} ns per simulated instruction); ` +
      `slowest tool: ${worst.toFixed(1)} ms for all its variants`,
  );
  return rejected || failedBuilds ? 1 : 0;
}

Deno.exit(await main());
