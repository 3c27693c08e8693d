"""File operations whose sizes, offsets and order are known, for the fsslower tests.

Waits for a line on stdin (so the tracers attach first), then:

  ops TARGET OTHER   the sequence in fsslower.test.ts (EXPECTED_OPS) on TARGET, the
                     same writes on OTHER (another file system: must not show), an
                     O_PATH open and a directory open on TARGET's file system (must
                     not show either)
  slow TARGET        64 MiB written then fsync'd (slow), then 200 cached 4 KiB reads
                     (fast); prints {"fsync_ms": ..., "max_read_ms": ...,
                     "reads_over_10ms": ...} (times measured around each call)

Each call is one syscall: os.read -> read, os.pread -> pread64, os.writev -> writev,
os.preadv/pwritev without flags -> preadv/pwritev, with flags -> preadv2/pwritev2.
"""
import json
import os
import sys
import time


def write_phase(path):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"a" * 4096)
    os.write(fd, b"b" * 10000)
    os.pwrite(fd, b"c" * 3000, 65536)
    os.writev(fd, [b"d" * 100, b"e" * 200])
    os.pwritev(fd, [b"f" * 50], 70000)
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)


def read_phase(path):
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, 5000)
    os.pread(fd, 2048, 65536)
    os.read(fd, 1_000_000)
    os.read(fd, 100)
    os.preadv(fd, [bytearray(10)], 100)
    os.lseek(fd, 300, os.SEEK_SET)
    os.preadv(fd, [bytearray(20)], -1, os.RWF_HIPRI)  # preadv2 at the file position
    os.close(fd)


def ops(target, other):
    write_phase(target)
    read_phase(target)
    write_phase(other)
    read_phase(other)
    os.close(os.open(target, os.O_PATH))
    os.close(os.open(os.path.dirname(target), os.O_RDONLY | os.O_DIRECTORY))


def slow(target):
    fd = os.open(target, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        os.write(fd, chunk)
    t0 = time.monotonic()
    os.fsync(fd)
    fsync_ms = (time.monotonic() - t0) * 1000
    max_read_ms = 0.0
    reads_over_10ms = 0  # a busy machine can preempt us around a read
    for i in range(200):
        t0 = time.monotonic()
        os.pread(fd, 4096, i * 4096)
        ms = (time.monotonic() - t0) * 1000
        max_read_ms = max(max_read_ms, ms)
        reads_over_10ms += ms > 10
    os.close(fd)
    print(json.dumps({"fsync_ms": fsync_ms, "max_read_ms": max_read_ms,
                      "reads_over_10ms": reads_over_10ms}))


def main():
    sys.stdin.readline()
    if sys.argv[1] == "ops":
        ops(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "slow":
        slow(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]}")


main()
