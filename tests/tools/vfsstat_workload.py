"""VFS calls in known numbers, for the vfsstat test.

Waits for a line on stdin (so the tracers attach first), then makes the calls
below and prints how many of each it made as JSON. Each call is one syscall
(os.read -> read, os.pwrite -> pwrite64, os.open -> openat, os.mknod -> mknodat).
Calls that must NOT count: failed opens (ENOENT: vfs_open never runs) and
mknod of FIFOs (vfs_create is for regular files).
"""
import json
import os
import stat
import sys
import tempfile

READS, PREADS, WRITES, PWRITES = 150_000, 50_000, 80_000, 20_000
FSYNCS, FDATASYNCS = 1_000, 500
OPENS, FAILED_OPENS = 20_000, 20_000
CREATES, FIFOS = 300, 200

sys.stdin.readline()
work = tempfile.mkdtemp(dir="/dev/shm", prefix="bpftk_vfsstat_")
zero = os.open("/dev/zero", os.O_RDONLY)
null = os.open("/dev/null", os.O_WRONLY)
synced = os.open(os.path.join(work, "synced"), os.O_CREAT | os.O_WRONLY, 0o600)
opens = 3  # the three above
for _ in range(READS):
    os.read(zero, 1)
for _ in range(PREADS):
    os.pread(zero, 1, 0)
for _ in range(WRITES):
    os.write(null, b"x")
for _ in range(PWRITES):
    os.pwrite(null, b"x", 0)
for _ in range(FSYNCS):
    os.fsync(synced)
for _ in range(FDATASYNCS):
    os.fdatasync(synced)
for _ in range(OPENS - opens):
    os.close(os.open("/dev/null", os.O_RDONLY))
missing = os.path.join(work, "missing")
for _ in range(FAILED_OPENS):
    try:
        os.open(missing, os.O_RDONLY)
    except FileNotFoundError:
        pass
for i in range(CREATES):
    os.mknod(os.path.join(work, f"f{i}"), 0o600 | stat.S_IFREG)
for i in range(FIFOS):
    os.mknod(os.path.join(work, f"p{i}"), 0o600 | stat.S_IFIFO)
for name in os.listdir(work):  # opens the directory: one more open
    os.unlink(os.path.join(work, name))
os.rmdir(work)
for fd in (zero, null, synced):
    os.close(fd)
# This print is one more write (to the stdout pipe).
print(json.dumps({
    "read": READS + PREADS,
    "write": WRITES + PWRITES + 1,
    "fsync": FSYNCS + FDATASYNCS,
    "open": OPENS + 1,
    "create": CREATES,
}))
