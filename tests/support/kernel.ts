/**
 * What kernel tests share: the rule that they run in CI (never skip there),
 * and views of the kernel's state to check cleanup against.
 */

/** True in CI, where kernel tests must run: a missing capability is a failure. */
export const IN_CI = Deno.env.get("CI") === "true";

/** Why this machine cannot run kernel tests, or undefined when it can. */
export function kernelTestBlocker(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    if (!/^Uid:\s+0\s/m.test(status)) return "not root";
  } catch {
    return "cannot read /proc/self/status";
  }
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    return "no /sys/kernel/btf/vmlinux";
  }
  return undefined;
}

/**
 * Options for a Deno.test that needs the kernel: ignored outside CI when the
 * machine cannot run it; in CI never ignored, so it fails loudly instead.
 */
export function kernelTest(name: string): { name: string; ignore: boolean } {
  const blocker = kernelTestBlocker();
  if (blocker && !IN_CI) console.warn(`skipping kernel test '${name}': ${blocker}`);
  return { name, ignore: !!blocker && !IN_CI };
}

/** Names of the BPF programs loaded in the kernel right now (bpftool prog show). */
export async function loadedProgramNames(): Promise<string[]> {
  const out = await new Deno.Command("bpftool", { args: ["-j", "prog", "show"], stdout: "piped" })
    .output();
  if (!out.success) throw new Error("bpftool prog show failed");
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as { name?: string }[];
  return progs.map((p) => p.name ?? "");
}

/** Waits until `check()` is true, polling, or throws after `ms`. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
