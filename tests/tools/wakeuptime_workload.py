#!/usr/bin/env python3
"""Blocked time whose waker is known, for wakeuptime.

A process named "wt_waker" forks "wt_target"; the target reads one byte at
a time from a pipe, the waker writes one byte every SLEEP_MS, N times. So
the target blocks N times in pipe_read, each time woken by wt_waker from
pipe_write after about SLEEP_MS. The target times each of its reads itself
(from the read call to its return, which includes the wait in the run
queue after the wakeup, so the blocked time a tool reports is a little
less) and prints the sum.

Usage: wakeuptime_workload.py N SLEEP_MS
Prints "target PID", waits for a line on stdin, then runs; the target
prints "blocked_us T" at the end.
"""
import os
import sys
import time

n, sleep_ms = int(sys.argv[1]), float(sys.argv[2])
r, w = os.pipe()
target = os.fork()
if target == 0:
    with open("/proc/self/comm", "w") as f:
        f.write("wt_target")
    os.close(w)
    os.read(r, 1)  # "go"
    total = 0
    for _ in range(n):
        t0 = time.monotonic_ns()
        os.read(r, 1)
        total += time.monotonic_ns() - t0
    print(f"blocked_us {total // 1000}", flush=True)
    os._exit(0)
with open("/proc/self/comm", "w") as f:
    f.write("wt_waker")
os.close(r)
print(f"target {target}", flush=True)
sys.stdin.readline()
os.write(w, b"g")
for _ in range(n):
    time.sleep(sleep_ms / 1000)
    os.write(w, b"x")
os.waitpid(target, 0)
