/**
 * Reading and writing a process's memory through /proc/PID/mem: the USDT
 * semaphores of a traced process, and this process's own vDSO image.
 *
 * @module
 */

/**
 * Adds `delta` to a USDT semaphore (a u16 in the process's memory) through
 * /proc/PID/mem: +1 to enable the probe while tracing, -1 after. Returns the
 * new value. (The kernel can do this itself through the uprobe PMU's
 * ref_ctr_offset; until the attach layer passes it, this is the way.)
 */
export function addToUsdtSemaphore(pid: number, address: number, delta: number): number {
  using mem = Deno.openSync(`/proc/${pid}/mem`, { read: true, write: true });
  const buf = new Uint8Array(2);
  mem.seekSync(address, Deno.SeekMode.Start);
  if (mem.readSync(buf) !== 2) throw new Error(`reading the USDT semaphore of PID ${pid}`);
  const view = new DataView(buf.buffer);
  const value = Math.max(0, view.getUint16(0, true) + delta) & 0xffff;
  view.setUint16(0, value, true);
  mem.seekSync(address, Deno.SeekMode.Start);
  mem.writeSync(buf);
  return value;
}

/** `length` bytes of this process's memory from `address` (a mapping /proc/self/maps lists). */
export function readOwnMemory(address: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  using mem = Deno.openSync("/proc/self/mem", { read: true });
  mem.seekSync(address, Deno.SeekMode.Start);
  for (let done = 0; done < length;) {
    const n = mem.readSync(out.subarray(done));
    if (!n) throw new Error(`short read of this process's memory at 0x${address.toString(16)}`);
    done += n;
  }
  return out;
}
