/**
 * Running the reference tools (libbpf-tools, bpftrace) from tests: checking
 * they are usable, producing scheduler and disk activity, capturing stdout.
 *
 * In CI (env CI=true) a missing reference or missing root is a failure that
 * names the package to install; elsewhere the test prints a note and passes.
 *
 * @module
 */

/** True when CI=true: nothing may be skipped silently. */
export const IN_CI = Deno.env.get("CI") === "true";

/**
 * Says whether the reference binary at `path` can be run (exists, and we are
 * root). Throws in CI when it cannot; prints a note and returns false outside CI.
 */
export function referenceUsable(path: string, aptPackage: string): boolean {
  let problem: string | undefined;
  try {
    Deno.statSync(path);
  } catch {
    problem = `${path} is missing (apt-get install ${aptPackage})`;
  }
  if (!problem && Deno.uid() !== 0) problem = `${path} needs root`;
  if (!problem) return true;
  if (IN_CI) throw new Error(`reference cross-check cannot run: ${problem}`);
  console.log(`note: skipping reference cross-check: ${problem}`);
  return false;
}

/** Output of a finished command. */
export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its exit code and output as text. */
export async function capture(cmd: string, args: string[]): Promise<Captured> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Starts processes that keep the run queues busy and wake up often: more busy
 * loops than CPUs, plus a fork/exec loop. Returns a function that stops them.
 */
export function startSchedulerWorkload(): () => Promise<void> {
  const loops = [
    "while :; do :; done",
    "while :; do :; done",
    "while :; do :; done",
    "while :; do /bin/true; done",
  ];
  const children = loops.map((script) =>
    new Deno.Command("/bin/sh", {
      args: ["-c", script],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  return async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await Promise.all(children.map((child) => child.status));
  };
}

/**
 * Starts a loop of direct (uncached) writes to a temporary file so block I/O
 * completes while a tool traces. Returns a function that stops it and cleans up.
 */
export async function startDiskWorkload(): Promise<() => Promise<void>> {
  const dir = await Deno.makeTempDir({ prefix: "format-ref-io-" });
  const file = `${dir}/data`;
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      `while :; do dd if=/dev/zero of='${file}' bs=4k count=256 oflag=direct 2>/dev/null; done`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
}
