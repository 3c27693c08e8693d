#!/usr/bin/env python3
"""Run queue latency whose truth is known, measured by the workload itself.

A waiter process W and a SCHED_FIFO process F are pinned to the same CPU C.
F hands W a message (the time it was sent, CLOCK_MONOTONIC ns) through a
pipe, then spins for SPIN_MS: W cannot run while F spins. When F blocks
(waiting for W's acknowledgement) W runs, reads the message and records
how long it waited. So each of W's N waits lasts about SPIN_MS, and W
reports every wait it had: the histogram a run queue latency tool must
show for W, whatever else loads the machine (a busy CPU makes the waits
longer, and W's own numbers say by how much).

Each wait is one run queue wait for the kernel: for the first message W is
woken from its read; for the later ones F, woken by W's acknowledgement,
preempts W (FIFO beats W's class) before W reads again, so W waits
runnable, preempted, until F blocks. W waits on its "go" pipe first (one
short wait, also measured), and sends no acknowledgement after the last
message, so nothing of W's follows unmeasured.

Usage: sched_workload.py CPU N SPIN_MS
Prints "waiter PID" once W is blocked, waits for a line on stdin, then
prints "waits_us a,b,..." (W's N + 1 measured waits) and "done".
"""
import os
import struct
import sys
import time

cpu, n, spin_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
msg_r, msg_w = os.pipe()
ack_r, ack_w = os.pipe()
go_r, go_w = os.pipe()


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


waiter = os.fork()
if waiter == 0:
    os.sched_setaffinity(0, {cpu})
    for fd in (msg_w, ack_r, go_w):
        os.close(fd)
    waits = []
    (sent,) = struct.unpack("q", os.read(go_r, 8))
    waits.append(now_ns() - sent)
    for i in range(n):
        (sent,) = struct.unpack("q", os.read(msg_r, 8))
        waits.append(now_ns() - sent)
        if i < n - 1:
            os.write(ack_w, b"a")
    print("waits_us " + ",".join(str(w // 1000) for w in waits), flush=True)
    os._exit(0)

os.sched_setaffinity(0, {cpu})
# "waiter PID" only once W sleeps in its first read, so that read is a wakeup.
while open(f"/proc/{waiter}/stat").read().rsplit(")", 1)[1].split()[0] != "S":
    time.sleep(0.001)
print(f"waiter {waiter}", flush=True)
sys.stdin.readline()
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
os.write(go_w, struct.pack("q", now_ns()))
time.sleep(0.05)  # W runs, blocks in its read of the first message
for i in range(n):
    os.write(msg_w, struct.pack("q", now_ns()))
    end = time.monotonic() + spin_ms / 1000
    while time.monotonic() < end:
        pass
    if i < n - 1:
        os.read(ack_r, 1)  # blocks: W runs until its acknowledgement wakes us
os.waitpid(waiter, 0)
print("done", flush=True)
