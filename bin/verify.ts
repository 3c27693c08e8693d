#!/usr/bin/env -S deno run -A
/**
 * `deno task verify`: verifies every tool's BPF programs with our verifier,
 * offline and without root, as they would be built for this kernel (each
 * tool is run with `--dump` and BPFTK_DUMP=json, which builds its programs
 * and prints them instead of loading them). Prints one line per program and
 * a summary `N programs verified, M rejected`; exits 1 when any is rejected.
 *
 *     deno task verify [tool...]
 */
import { encode } from "../bytecode/encode.ts";
import { Btf } from "../lib/btf/btf.ts";
import { possibleCpus } from "../lib/kernel/map.ts";
import { formatDiagnostic, type VerifiableProgram, verifyProgram } from "../lib/verifier/built.ts";

/** Flag combinations that build different programs, per tool (the default build always runs). */
const VARIANTS: Record<string, string[][]> = {
  runqlat: [["-P"], ["-L"], ["--pidnss"], ["-p", "1"], ["-c", "/sys/fs/cgroup"]],
  biolatency: [["-Q"], ["-D"], ["-F"], ["-c", "/sys/fs/cgroup"]],
  biolateness: [["-Q"], ["-D"]],
  bitesize: [["-c", "deno"]],
  execsnoop: [["-x"], ["-u", "0"], ["-n", "sh"], ["-P", "1"], ["--max-args", "5"]],
  opensnoop: [["-x"], ["-p", "1"], ["-t", "1"], ["-u", "0"], ["-d", "1"], ["-n", "sh"], ["-e"]],
  tcpsynbl: [["-4"], ["-6"]],
};

const root = new URL("../", import.meta.url);

async function programsOf(tool: string, args: string[]): Promise<VerifiableProgram[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`tools/${tool}.ts`, root).pathname, "--dump", ...args],
    env: { BPFTK_DUMP: "json" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new Error(`${tool} ${args.join(" ")} --dump failed: ${err}`);
  }
  try {
    return JSON.parse(text) as VerifiableProgram[];
  } catch {
    throw new Error(`${tool} --dump printed no JSON (lib/cli/dump.ts must honor BPFTK_DUMP=json)`);
  }
}

async function main(): Promise<number> {
  const wanted = Deno.args.length ? Deno.args : [...Deno.readDirSync(new URL("tools/", root))]
    .filter((e) => e.isFile && e.name.endsWith(".ts")).map((e) => e.name.slice(0, -3)).sort();
  const btf = Btf.vmlinux();
  const cpus = possibleCpus();
  let verified = 0, rejected = 0, failedBuilds = 0, skipped = 0, insnCount = 0, processed = 0, ms = 0;
  const perTool = new Map<string, number>();
  for (const tool of wanted) {
    const seen = new Set<string>();
    for (const args of [[], ...(VARIANTS[tool] ?? [])]) {
      let programs: VerifiableProgram[];
      try {
        programs = await programsOf(tool, args);
      } catch (e) {
        const message = (e as Error).message;
        // A tool that cannot be built for this kernel (it needs kprobes, say)
        // has no programs here; anything else is a real failure.
        if (/needs|does not have|not available|not supported/i.test(message)) {
          skipped++;
          console.log(`skip   ${tool}: ${message}`);
        } else {
          failedBuilds++;
          console.log(`ERROR  ${tool}: ${message}`);
        }
        continue;
      }
      for (const p of programs) {
        const key = `${p.name}:${[...encode(p.insns)].join(",")}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const t0 = performance.now();
        const r = verifyProgram(p, btf, cpus);
        const dt = performance.now() - t0;
        ms += dt;
        perTool.set(tool, (perTool.get(tool) ?? 0) + dt);
        verified++;
        insnCount += p.insns.length;
        processed += r.processed;
        const flags = args.length ? ` [${args.join(" ")}]` : "";
        const line = `${tool}${flags} ${p.name} (${p.type}, ${p.insns.length} insns, ${dt.toFixed(2)} ms)`;
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
      (skipped ? ` (${skipped} tool builds skipped: not possible on this kernel)` : ""),
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
