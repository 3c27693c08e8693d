#!/usr/bin/env python3
"""Run queue latency whose truth is known.

A waiter process W, pinned to CPU C, blocks reading a pipe. A SCHED_FIFO
process F, pinned to the same CPU, repeatedly writes one byte to the pipe
(waking W) and then spins for SPIN_MS before sleeping. W cannot run while F
spins, so each of W's N wakeups waits in the run queue for about SPIN_MS.

Usage: sched_workload.py CPU N SPIN_MS
Prints "waiter PID" and waits for a line on stdin before starting, so the
tracer can attach first; prints "done" at the end.
"""
import os
import sys
import time

cpu, n, spin_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
r, w = os.pipe()
go_r, go_w = os.pipe()

waiter = os.fork()
if waiter == 0:
    os.sched_setaffinity(0, {cpu})
    os.close(w)
    os.close(go_w)
    os.read(go_r, 1)  # start together with F
    for _ in range(n):
        os.read(r, 1)
    os._exit(0)

os.sched_setaffinity(0, {cpu})
print(f"waiter {waiter}", flush=True)
sys.stdin.readline()
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
os.write(go_w, b"g")
time.sleep(0.05)
for _ in range(n):
    os.write(w, b"x")  # wakes W, which must wait for us
    end = time.monotonic() + spin_ms / 1000
    while time.monotonic() < end:
        pass
    time.sleep(0.005)  # now W runs, reads, blocks again
os.waitpid(waiter, 0)
print("done", flush=True)
