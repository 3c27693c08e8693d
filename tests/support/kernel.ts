/**
 * What kernel tests share: the rule that they run in CI (never skip there),
 * a time limit for each, and views of the kernel's state to check cleanup
 * against.
 */
import { haveCommand, killAllLive, runOk } from "./process.ts";

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

/** Time limit of a kernel test unless it says otherwise. */
export const KERNEL_TEST_LIMIT_MS = 90_000;

/** What a test needs besides the kernel, and how long it may take. */
export interface TestNeeds {
  /** Time limit in ms (default KERNEL_TEST_LIMIT_MS). */
  limitMs?: number;
  /** Commands it runs (reference tools, compilers): .ci/install --test installs them. */
  commands?: string[];
  /** false for tests whose library leaves ops running past the test (a browser driver). */
  sanitize?: boolean;
  /** Something else it needs that is missing here (a header, say), or undefined. */
  missing?: string;
}

/**
 * A test that needs the kernel: ignored (with a printed note) outside CI when
 * the machine cannot run it; in CI never ignored, so it fails loudly instead.
 * Given `fn`, registers the test with a time limit; without, returns the
 * options for Deno.test (no time limit).
 */
export function kernelTest(name: string): { name: string; ignore: boolean };
export function kernelTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void> | void,
  opts?: TestNeeds,
): void;
export function kernelTest(
  name: string,
  fn?: (t: Deno.TestContext) => Promise<void> | void,
  opts: TestNeeds = {},
): { name: string; ignore: boolean } | void {
  const blocker = kernelTestBlocker();
  if (!fn) {
    if (blocker && !IN_CI) console.warn(`skipping kernel test '${name}': ${blocker}`);
    return { name, ignore: !!blocker && !IN_CI };
  }
  neededTest(name, fn, opts, blocker);
}

/**
 * A test that needs commands (but not the kernel): ignored with a note
 * outside CI when one is missing; in CI it runs and fails naming it.
 */
export function commandTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void> | void,
  opts: TestNeeds,
): void {
  neededTest(name, fn, opts, undefined);
}

function neededTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void> | void,
  opts: TestNeeds,
  kernelBlocker: string | undefined,
): void {
  const missing = (opts.commands ?? []).filter((c) => !haveCommand(c))
    .map((c) => `${c} not installed`);
  if (opts.missing) missing.push(opts.missing);
  const blocker = kernelBlocker ?? (missing.length ? missing.join(", ") : undefined);
  if (blocker && !IN_CI) console.warn(`skipping test '${name}': ${blocker}`);
  const body = missing.length
    ? () => {
      throw new Error(`${missing.join(", ")}: run bash .ci/install --test`);
    }
    : fn;
  Deno.test({
    name,
    ignore: !!blocker && !IN_CI,
    sanitizeOps: opts.sanitize,
    sanitizeResources: opts.sanitize,
    fn: withTimeLimit(opts.limitMs ?? KERNEL_TEST_LIMIT_MS, body),
  });
}

/**
 * `fn` bounded to `ms`: past it, every process the test started is killed
 * (so its awaits end and its `finally` blocks clean up), and the test fails
 * naming them.
 */
export function withTimeLimit(
  ms: number,
  fn: (t: Deno.TestContext) => Promise<void> | void,
): (t: Deno.TestContext) => Promise<void> {
  return async (t) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const over = new Promise<"over">((r) => (timer = setTimeout(() => r("over"), ms)));
    const body = Promise.resolve().then(() => fn(t));
    try {
      if (await Promise.race([body, over]) !== "over") return;
    } finally {
      clearTimeout(timer);
    }
    const killed = killAllLive();
    // Give its finally blocks a moment (unmounts, cgroup removal) before failing.
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      body.catch(() => {}),
      new Promise((r) => (grace = setTimeout(r, 5000))),
    ]);
    clearTimeout(grace);
    throw new Error(
      `time limit of ${ms} ms exceeded; killed: ${killed.join(", ") || "no processes"}`,
    );
  };
}

/** `bpftool -j ARGS` parsed (killed at its deadline like any process). */
export async function bpftoolJson<T>(...args: string[]): Promise<T> {
  return JSON.parse((await runOk("bpftool", ["-j", ...args], { deadlineMs: 15_000 })) || "[]");
}

/**
 * Names of the BPF programs loaded in the kernel right now (bpftool prog
 * show), less those only other processes hold: on a shared machine others
 * run the same tools, and their programs are not this test's to count.
 */
export async function loadedProgramNames(): Promise<string[]> {
  const progs = await bpftoolJson<{ id: number; name?: string }[]>("prog", "show");
  const foreign = foreignProgramIds();
  return progs.filter((p) => !foreign.has(p.id)).map((p) => p.name ?? "");
}

/**
 * IDs of programs held (by a program or link fd, /proc/PID/fdinfo) only by
 * processes outside this test process's tree.
 */
function foreignProgramIds(): Set<number> {
  const parent = new Map<number, number>();
  const held = new Map<number, number[]>();
  for (const e of readDirOrEmpty("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      const ids: number[] = [];
      for (const fd of readDirOrEmpty(`/proc/${pid}/fd`)) {
        try {
          // Only BPF program and link fds name a program (readlink is cheaper than fdinfo).
          if (!/^anon_inode:bpf[-_](prog|link)/.test(Deno.readLinkSync(`/proc/${pid}/fd/${fd}`))) {
            continue;
          }
          const m = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`).match(/^prog_id:\s+(\d+)/m);
          if (m) ids.push(Number(m[1]));
        } catch {
          // closed meanwhile
        }
      }
      if (ids.length) held.set(pid, ids);
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  const ours = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === Deno.pid) return true;
    }
    return false;
  };
  const mine = new Set<number>(), theirs = new Set<number>();
  for (const [pid, ids] of held) for (const id of ids) (ours(pid) ? mine : theirs).add(id);
  for (const id of mine) theirs.delete(id);
  return theirs;
}

function readDirOrEmpty(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

/** Waits until `check()` is true, polling, or throws after `ms`. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
