#!/usr/bin/env python3
"""On-CPU and off-CPU times whose truth is known, for cpudist.

A process named "cpuburst", pinned to CPU C and SCHED_FIFO once it starts
(so no ordinary task can preempt it and split a burst), sleeps SLEEP_MS,
then N times spins BURST_MS and sleeps SLEEP_MS. So it has N on-CPU slices
of BURST_MS (each ending in a sleep), N + 1 off-CPU periods of SLEEP_MS
(each ending with its wakeup: a FIFO task preempts whatever runs), and a
few short slices around them (the start, the exit).

Usage: cpudist_workload.py CPU N BURST_MS SLEEP_MS
Prints "ready PID" then waits for a line on stdin before it starts.
"""
import os
import sys
import time

cpu, n, burst_ms, sleep_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
with open("/proc/self/comm", "w") as f:
    f.write("cpuburst")
os.sched_setaffinity(0, {cpu})
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
time.sleep(sleep_ms / 1000)
for _ in range(n):
    end = time.monotonic() + burst_ms / 1000
    while time.monotonic() < end:
        pass
    time.sleep(sleep_ms / 1000)
os._exit(0)  # no interpreter shutdown: the last slice stays short
