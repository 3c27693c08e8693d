/**
 * The fsslower tools' output: bcc xfsslower's columns, printf-exact numbers
 * (%7.2f rounds exact ties to even as glibc does), bcc's banner and CSV, JSON
 * with the numbers the text shows, and /proc/filesystems parsing.
 */
import { deepEqual, equal } from "node:assert/strict";
import {
  CSV_HEADER,
  formatCsv,
  formatText,
  type FsOperation,
  jsonFields,
  opLetter,
  textHeader,
} from "../../../lib/fsslower/format.ts";
import { FsOp } from "../../../lib/fsslower/programs.ts";
import { FILESYSTEMS, fsRegistered, unmountedReason } from "../../../lib/fsslower/filesystems.ts";

const NOW = new Date(2024, 0, 2, 21, 20, 46);

function op(overrides: Partial<FsOperation>): FsOperation {
  return {
    endNs: 123456789012n,
    deltaUs: 60160n,
    offset: 13925n * 1024n + 77n,
    size: 8012n,
    pid: 112789,
    op: FsOp.read,
    task: "java",
    file: "file.out",
    ...overrides,
  };
}

Deno.test("fsslower text: the seed's xfsslower layout", () => {
  equal(
    textHeader(FILESYSTEMS.xfs.title, 50),
    "Tracing XFS operations slower than 50 ms\n" +
      "TIME     COMM           PID    T BYTES   OFF_KB   LAT(ms) FILENAME\n",
  );
  equal(textHeader("ext4", 0, 5).split("\n")[0], "Tracing ext4 operations for 5 secs.");
  equal(textHeader("ext4", 0).split("\n")[0], "Tracing ext4 operations");
  // bcc's spellings: xfsslower "XFS", ext4slower "ext4", btrfsslower "btrfs", zfsslower "ZFS"
  deepEqual(Object.values(FILESYSTEMS).map((f) => f.title), ["XFS", "ext4", "btrfs", "ZFS"]);
  equal(
    formatText(op({}), NOW),
    "21:20:46 java           112789 R 8012    13925      60.16 file.out\n",
  );
  // COMM cut at 14 (%-14.14s); wide values push the columns, as printf does
  equal(
    formatText(
      op({ task: "tokio-runtime-worker", size: 123456789n, deltaUs: 123456789n, op: FsOp.write }),
      NOW,
    ),
    "21:20:46 tokio-runtime- 112789 W 123456789 13925    123456.79 file.out\n",
  );
  equal(
    // an fsync's BYTES is its return value, as bcc shows it
    formatText(op({ op: FsOp.fsync, size: 0n, offset: 0n, deltaUs: 1125n }), NOW),
    "21:20:46 java           112789 F 0       0           1.12 file.out\n",
  );
});

Deno.test("fsslower text: LAT(ms) is printf %7.2f (exact ties to even)", () => {
  const lat = (us: bigint) => formatText(op({ deltaUs: us }), NOW).slice(50, 57);
  deepEqual(
    [0n, 4n, 5n, 6n, 125n, 375n, 625n, 875n, 1005n, 999999n].map(lat),
    [
      "   0.00",
      "   0.00",
      "   0.01",
      "   0.01",
      "   0.12",
      "   0.38",
      "   0.62",
      "   0.88",
      "   1.00",
      "1000.00",
    ],
  );
});

Deno.test("fsslower text: control characters in names are escaped, JSON keeps them", () => {
  const hostile = op({ task: "a\x1bb", file: "x\x1b[2Jy" });
  equal(formatText(hostile, NOW).endsWith(" x\\x1b[2Jy\n"), true);
  equal(jsonFields(hostile).file, "x\x1b[2Jy");
});

Deno.test("fsslower CSV and JSON carry the text's numbers", () => {
  equal(CSV_HEADER, "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE\n");
  const e = op({});
  equal(formatCsv(e), "123456789,java,112789,R,8012,14259277,60160,file.out\n");
  equal(formatCsv(op({ op: FsOp.fsync, size: 0n })).split(",")[4], "0");
  deepEqual(
    jsonFields(e),
    {
      end_ns: 123456789012,
      comm: "java",
      pid: 112789,
      type: "R",
      bytes: 8012,
      offset: 14259277,
      latency_us: 60160,
      file: "file.out",
    },
  );
  equal(jsonFields(op({ op: FsOp.fsync, size: 0n })).bytes, 0);
  deepEqual([0, 1, 2, 3, 9].map(opLetter), ["R", "W", "O", "F", "?"]);
});

Deno.test("fsRegistered reads /proc/filesystems lines", () => {
  const text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\txfs\nnodev\tbtrfs_test\n\tbtrfs\n";
  deepEqual(
    ["ext4", "xfs", "btrfs", "zfs", "tmpfs", "ext"].map((n) => fsRegistered(n, text)),
    [true, true, true, false, true, false],
  );
});

Deno.test("unmountedReason: mounted, registered but not mounted, not in the kernel", () => {
  const filesystems = "nodev\ttmpfs\n\text4\n\text3\n\txfs\n";
  const mounts = "/dev/vda1 / ext3 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n";
  equal(unmountedReason(FILESYSTEMS.ext4, filesystems, mounts), undefined); // ext3 by ext4
  equal(
    unmountedReason(FILESYSTEMS.xfs, filesystems, mounts),
    "no xfs file system is mounted now",
  );
  equal(
    unmountedReason(FILESYSTEMS.zfs, filesystems, mounts),
    "zfs is not available in this kernel (not in /proc/filesystems: is the zfs module loaded?)",
  );
});
