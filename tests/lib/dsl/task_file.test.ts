/**
 * currentFileOfFd and the raw_syscalls helpers in the kernel: a program on
 * raw_syscalls:sys_enter, for one child process's read(2), finds the file
 * behind the fd argument, and what it reads there (inode number, file system
 * magic, file position, dentry name) is what stat() and the child say.
 */
import { deepEqual, equal } from "node:assert/strict";
import { loadAndAttach } from "../../../lib/cli/session.ts";
import { defineMap } from "../../../lib/dsl/maps.ts";
import { jumpToSyscalls, rawSyscallProbe, syscallArg } from "../../../lib/dsl/raw_syscalls.ts";
import { r0, r1, r10, r7, r8, r9 } from "../../../lib/dsl/registers.ts";
import { char, defineSchema } from "../../../lib/dsl/schema.ts";
import { currentFileOfFd } from "../../../lib/dsl/task_file.ts";
import { PausedWorkload } from "../../support/event_tools.ts";
import { kernelTest } from "../../support/kernel.ts";
import { runOk } from "../../support/process.ts";

const seen = defineSchema("seen", {
  ino: "u64",
  magic: "u64",
  pos: "s64",
  fd: "u32",
  found: "u32",
  name: char(32),
});
const result = defineMap({
  name: "tf_result",
  type: "array",
  keySize: 4,
  valueSize: seen.size,
  maxEntries: 1,
});

const EXT4_MAGIC = 0xef53n;

/** Learns about the fd of the child's read() calls (the last one wins). */
function program(pid: number) {
  const p = rawSyscallProbe("enter", "tf_test");
  const other = p.label(), read = p.label(), key = p.stack(4);
  p.ctx(r1, "id");
  jumpToSyscalls(p, r1, [[["read"], read]], other);
  p.bind(read);
  p.filterCurrentTgid(pid);
  p.store("u32", r10, key, 0).lookup(result, key).jumpIf(r0, "==", 0, other).mov(r9, r0);
  syscallArg(p, r7, 0);
  seen.store(p, r9, "fd", r7);
  currentFileOfFd(p, r8, r7, other);
  seen.store(p, r9, "found", 1);
  p.field(r1, r8, "file", "f_inode->i_ino");
  seen.store(p, r9, "ino", r1);
  p.field(r1, r8, "file", "f_inode->i_sb->s_magic");
  seen.store(p, r9, "magic", r1);
  p.field(r1, r8, "file", "f_pos");
  seen.store(p, r9, "pos", r1);
  p.field(r7, r8, "file", "f_path.dentry->d_name.name");
  seen.readString(p, r9, "name", r7, "kernel");
  p.bind(other);
  return p.ret(0).build();
}

kernelTest("currentFileOfFd: the file behind a read()'s fd, as stat() sees it", async () => {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "bpftk_tf_" });
  const path = `${dir}/task_file_probe`;
  await Deno.writeTextFile(path, "x".repeat(5000));
  try {
    // The child opens the file (fd 3 or more), moves to 1234 and reads one byte.
    const child = new PausedWorkload("python3", [
      "-c",
      `import os,sys\nsys.stdin.readline()\nfd=os.open(${JSON.stringify(path)}, os.O_RDONLY)\n` +
      `os.lseek(fd, 1234, 0)\nos.read(fd, 1)\nprint(fd)`,
    ]);
    using session = loadAndAttach([program(child.pid)]);
    const out = await child.run();
    equal(out.code, 0, out.stderr);
    const got = seen.decode(session.maps.get(result)!.lookup(new Uint8Array(4))!);
    const st = await Deno.stat(path);
    equal(got.found, 1);
    equal(got.fd, Number(out.stdout.trim()));
    equal(got.ino, BigInt(st.ino!));
    equal(got.pos, 1234n);
    equal(got.name, "task_file_probe");
    // /var/tmp is on the root file system: ext4 on the build machines
    const rootFs = await runOk("findmnt", ["-n", "-o", "FSTYPE", "-T", dir]);
    if (rootFs.trim() === "ext4") deepEqual(got.magic, EXT4_MAGIC);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
