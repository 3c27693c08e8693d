/**
 * mysqld_qslower against a real MariaDB server (Debian's mariadb-server
 * package), started here on a private data directory and socket with no
 * networking. One client session runs queries of known duration
 * (SELECT SLEEP(0.2), SLEEP(0.5)) between fast ones; a run with a 100 ms
 * threshold shows exactly the slow ones, each within 10% above its sleep
 * (tolerance: the server's own overhead is well under 10 ms here); a run with
 * threshold 0 (--json) shows every query of the session, the fast ones
 * under 100 ms, a long one cut at 127 bytes. Then the error paths, and that
 * nothing stays loaded.
 */
import { deepEqual, equal as assertEquals, ok as assert } from "node:assert/strict";
import { kernelTest, loadedProgramNames, waitFor } from "../support/kernel.ts";
import { waitForPrograms } from "../support/event_tools.ts";
import { run, runOk, Spawned } from "../support/process.ts";
import { runToolOnce, ToolProcess } from "../support/tool_process.ts";

const MARIADBD = "/usr/sbin/mariadbd";

/** A throw-away MariaDB server. */
class MariaDb {
  readonly dir = Deno.makeTempDirSync({ prefix: "qslower-" });
  readonly socket = `${this.dir}/mysqld.sock`;
  server?: Spawned;

  async start(): Promise<void> {
    for (const bin of [MARIADBD, "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"]) {
      try {
        Deno.statSync(bin);
      } catch {
        throw new Error(
          `${bin} is missing: install mariadb-server (apt-get install mariadb-server)`,
        );
      }
    }
    await runOk("mariadb-install-db", [
      "--no-defaults",
      `--datadir=${this.dir}/data`,
      "--user=root",
      "--skip-test-db",
      "--auth-root-authentication-method=normal",
    ]);
    this.server = new Spawned(MARIADBD, [
      "--no-defaults",
      `--datadir=${this.dir}/data`,
      `--socket=${this.socket}`,
      `--pid-file=${this.dir}/mysqld.pid`,
      `--log-error=${this.dir}/error.log`,
      "--skip-networking",
      "--skip-grant-tables",
      "--innodb-buffer-pool-size=16M",
      "--user=root",
    ], { deadlineMs: 120_000 });
    await waitFor(async () => (await this.query("SELECT 1")).success, 20000, "mariadbd to answer");
  }

  get pid(): number {
    return this.server!.pid;
  }

  /** Runs SQL in one client session (one connection, one server thread). */
  async query(sql: string): Promise<{ success: boolean; stdout: string }> {
    const out = await run("mariadb", [
      "--no-defaults",
      `--socket=${this.socket}`,
      "-u",
      "root",
      "-N",
      "-B",
      "-e",
      sql,
    ]);
    return { success: out.code === 0, stdout: out.stdout };
  }

  async stop(): Promise<void> {
    // SIGTERM, then SIGKILL after the grace period (that failure is not this test's subject).
    await this.server?.stop("SIGTERM", 20_000).catch(() => {});
    Deno.removeSync(this.dir, { recursive: true });
  }
}

const LONG = `SELECT '${"q".repeat(200)}'`;
/** The session: fast queries around two slow ones of known duration. */
const SESSION = [
  "SELECT 1",
  "SELECT SLEEP(0.2)",
  "SELECT 2",
  "SELECT SLEEP(0.5)",
  "SELECT 'fast marker'",
  LONG,
];

interface Row {
  time: number;
  tid: number;
  ms: number;
  query: string;
}

function parseText(stdout: string): Row[] {
  const lines = stdout.split("\n").filter(Boolean);
  assert(/^Tracing MySQL server queries for PID \d+ slower than 100 ms\.\.\.$/.test(lines[0]));
  assertEquals(lines[1], "TIME(s)        PID          MS QUERY");
  return lines.slice(2).map((l) => {
    const m = l.match(/^(\d+\.\d{6})\s+(\d+)\s+(\d+\.\d{3}) (.*)$/);
    assert(m, `row: ${l}`);
    assertEquals(l.indexOf(m[2]), 15, "PID column at 15 (%-14.6f %-6d)");
    return { time: Number(m[1]), tid: Number(m[2]), ms: Number(m[3]), query: m[4] };
  });
}

kernelTest("mysqld_qslower: slow queries of a real MariaDB server", async () => {
  const db = new MariaDb();
  const ours = async () => (await loadedProgramNames()).filter((n) => n.startsWith("mysqld_qs"));
  const before = (await ours()).length;
  const doneBefore = (await ours()).filter((n) => n === "mysqld_qs_done").length;
  let slow: ToolProcess | undefined, all: ToolProcess | undefined;
  try {
    await db.start();
    slow = new ToolProcess("mysqld_qslower", [String(db.pid), "100"]);
    all = new ToolProcess("mysqld_qslower", [String(db.pid), "0", "--json"]);
    await slow.waitForOutput(/^TIME\(s\)/m);
    await waitForPrograms("mysqld_qs_done", doneBefore + 2);
    const t0 = performance.now();
    const result = await db.query(SESSION.join("; "));
    const wall = performance.now() - t0;
    assert(result.success);
    assert(wall >= 700, `the session took ${wall} ms`);
    // Done when both have shown the session's last query (the workload's truth), not after a pause.
    await waitFor(
      () => /SLEEP\(0\.5\)/.test(slow!.stdout) && all!.stdout.includes(LONG.slice(0, 127)),
      15_000,
      "the session's queries in both outputs",
    ).catch(() => {});
    const s = await slow.stop(), a = await all.stop();
    assertEquals(s.code, 0, s.stderr);
    assertEquals(a.code, 0, a.stderr);

    // Threshold 100 ms: exactly the two sleeps, each within 10% above its length. MariaDB's
    // SLEEP() is a timed wait that may end up to a millisecond early (seen: 199.412 ms).
    const rows = parseText(s.stdout);
    deepEqual(rows.map((r) => r.query), ["SELECT SLEEP(0.2)", "SELECT SLEEP(0.5)"]);
    for (const [r, sleep] of [[rows[0], 200], [rows[1], 500]] as const) {
      assert(r.ms >= sleep - 1 && r.ms <= sleep * 1.1, `${r.query}: ${r.ms} ms`);
    }
    assertEquals(rows[0].time, 0);
    // The second started after the first ended (and a fast query ran between).
    assert(rows[1].time >= 0.2 && rows[1].time < 0.5, `start ${rows[1].time}`); // + client round trips
    assertEquals(rows[0].tid, rows[1].tid, "one session, one server thread");

    // Threshold 0: every query of the session, fast ones fast, same durations as above.
    const events = a.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
      .filter((e) => e.tid === rows[0].tid);
    const session = events.filter((e) => SESSION.some((q) => q.startsWith(e.query)));
    deepEqual(session.map((e) => e.query), [...SESSION.slice(0, -1), LONG.slice(0, 127)]);
    assert(session.every((e) => e.pid === db.pid));
    // "time" is the wall clock (the event driver's), "elapsed" TIME(s) of the text.
    assert(session.every((e) => !isNaN(Date.parse(e.time)) && e.elapsed >= 0), a.stdout);
    assertEquals(session.at(-1).truncated, true);
    for (const e of session) {
      if (e.query.includes("SLEEP")) {
        const text = rows.find((r) => r.query === e.query)!;
        assert(Math.abs(e.ms - text.ms) < 5, `${e.query}: json ${e.ms} text ${text.ms}`);
      } else assert(e.ms < 100, `${e.query}: ${e.ms} ms`);
    }
  } finally {
    slow?.killTree();
    all?.killTree();
    await db.stop();
  }
  assertEquals((await ours()).length, before, "nothing of ours stays loaded");
});

kernelTest("mysqld_qslower: usage errors, and a process that is not a server", async () => {
  for (const args of [[], ["999999999"], ["4194304"], ["1", "abc"], ["1", "2", "3"], ["-x"]]) {
    const r = await runToolOnce("mysqld_qslower", args);
    assertEquals(r.code, 2, `${args}: ${r.stderr}`);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  // Against a binary instead of a running server's: programs built offline (deno task verify).
  const mariadbd = Deno.realPathSync("/usr/sbin/mariadbd");
  const dump = await runToolOnce("mysqld_qslower", ["--dump", "--binary", mariadbd, "1"]);
  assertEquals(dump.code, 0, dump.stderr);
  assert(/^mysqld_qs_start: /m.test(dump.stdout) && /^mysqld_qs_done: /m.test(dump.stdout));
  const dir = await runToolOnce("mysqld_qslower", ["--binary", "/tmp", "1"]);
  assertEquals(dir.code, 2);
  assertEquals(
    dir.stderr,
    "mysqld_qslower: --binary /tmp: is a directory (see 'mysqld_qslower --help')\n",
  );
  const sleeper = new Spawned("sleep", ["30"]);
  try {
    const r = await runToolOnce("mysqld_qslower", [String(sleeper.pid)]);
    assertEquals(r.code, 1);
    assertEquals(
      r.stderr,
      `mysqld_qslower: ${Deno.realPathSync("/usr/bin/sleep")} (PID ${sleeper.pid}) has neither ` +
        "USDT probes mysql:query__start/query__done nor a dispatch_command function: " +
        "is it a MySQL or MariaDB server?\n",
    );
  } finally {
    sleeper.killTree();
    await sleeper.wait().catch(() => {});
  }
});
