/**
 * Loads cases into the kernel in its strict mode: run (by the tests) as a
 * child process holding CAP_BPF only, where the kernel refuses reads of
 * never-written stack and kernel addresses leaving the program, like our
 * verifier does. Reads a JSON array of cases on stdin, prints verdicts.
 *
 * @module
 */

import { type Case, kernel } from "./harness.ts";

if (import.meta.main) {
  const cases = JSON.parse(await new Response(Deno.stdin.readable).text()) as Case[];
  const verdicts = cases.map((c) => kernel(c));
  console.log(JSON.stringify(verdicts));
}

/** Runs `cases` through the strict-mode kernel (a CAP_BPF-only child process). */
export async function strictKernel(cases: Case[]): Promise<{ ok: boolean; log?: string }[]> {
  const cmd = new Deno.Command("setpriv", {
    args: [
      "--bounding-set=-all,+bpf",
      "--inh-caps=-all",
      Deno.execPath(),
      "run",
      "-A",
      new URL("./strict_kernel.ts", import.meta.url).pathname,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(cases)));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`strict-mode loader failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
