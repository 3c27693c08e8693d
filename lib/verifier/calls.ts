/**
 * Helper calls: the helper exists, the program type and license may call it,
 * each argument has the type the helper's prototype demands (map handle,
 * initialized key or buffer of the right size, context, typed pointer...),
 * the map suits the helper; then R1-R5 become unreadable and R0 gets the
 * helper's return type. Ring buffer reservations are references that every
 * path must submit or discard.
 *
 * @module
 */

import type { HelperArg, HelperProto } from "../../bytecode/helpers.ts";
import type { MapInfo } from "./types.ts";
import type { MapTypeName, ProgTypeName } from "../../bytecode/prog_types.ts";
import { MAX_VAR_OFF, readReg } from "./alu.ts";
import { fail } from "./errors.ts";
import { BPF_F_RDONLY_PROG } from "./map_flags.ts";
import { helperMem, type MemEnv, spilledBytes } from "./memory.ts";
import {
  constNum,
  constNumU,
  isConst,
  isZero,
  known,
  type Scalar,
  signedRange,
  umaxNum,
} from "./scalar.ts";
import {
  isPointer,
  type MachineState,
  pointerReg,
  type Reg,
  regTypeName,
  scalarReg,
  STACK_SIZE,
  StackByte,
  UNINIT,
  UNKNOWN_SCALAR,
} from "./state.ts";

/** What the call checks need. */
export interface CallEnv extends MemEnv {
  progType: ProgTypeName;
  helpers: ReadonlyMap<number, HelperProto>;
  /** nr_cpu_ids: bpf_get_smp_processor_id() is below it. */
  possibleCpus: number;
}

/**
 * Helpers a socket filter may call besides the base ones (`sk_filter_func_proto`
 * plus the process helpers the kernel grants privileged loaders).
 */
const SOCKET_FILTER_EXTRA: ReadonlySet<number> = new Set([
  15,
  16,
  22,
  25,
  26,
  37,
  46,
  47,
  55,
  68,
  109,
  117,
  122,
  141,
  148,
  156,
  157,
  160,
  176,
  180,
  191,
]);

/**
 * Helpers the kernel restricts to fewer program types than their table
 * class says: id to the program types that may call it. Learnt by loading a
 * call of every helper from every program type into Linux 6.18 (the
 * availability test re-checks it on every run).
 */
const ONLY_FOR: ReadonlyMap<number, readonly ProgTypeName[]> = new Map<number, ProgTypeName[]>([
  [36, []], // probe_write_user (locked down)
  [56, ["perf_event"]], // perf_prog_read_value
  [58, []], // override_return (needs CONFIG_BPF_KPROBE_OVERRIDE)
  [111, ["tp_btf"]], // skb_output
  [119, ["perf_event"]], // read_branch_records
  [121, ["tp_btf"]], // xdp_output
  [126, []], // seq_printf: iterators only
  [127, []], // seq_write
  [147, []], // d_path: allow-listed attach points only
  [150, []], // seq_printf_btf
  [162, ["tp_btf"]], // sock_from_file
  [173, ["kprobe", "tp_btf"]], // get_func_ip
  [183, []], // get_func_arg: trampolines only
  [184, []], // get_func_ret
  [185, []], // get_func_arg_cnt
]);

/** Which map types each map-specific helper takes (check_map_func_compatibility). */
const HELPER_MAPS: ReadonlyMap<number, readonly MapTypeName[]> = new Map<number, MapTypeName[]>([
  [22, ["perf_event_array"]], // perf_event_read
  [25, ["perf_event_array"]], // perf_event_output
  [55, ["perf_event_array"]], // perf_event_read_value
  [27, ["stack_trace"]], // get_stackid
  [130, ["ringbuf"]], // ringbuf_output
  [131, ["ringbuf"]], // ringbuf_reserve
  [134, ["ringbuf"]], // ringbuf_query
  [156, ["task_storage"]], // task_storage_get
  [157, ["task_storage"]], // task_storage_delete
  [1, ["hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash"]],
  [2, ["hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash"]],
  [3, ["hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash"]],
  [195, ["percpu_hash", "percpu_array", "lru_percpu_hash"]], // map_lookup_percpu_elem
]);

/** Helpers returning -errno or at most their buffer's size: get_stack, get_task_stack, *_str. */
const SIZED_RESULT: ReadonlySet<number> = new Set([67, 141, 45, 114, 115]);
/** The kernel's MAX_ERRNO. */
const MAX_ERRNO = 4095;

/** Helpers that change a map: update, delete, push, pop. */
const MAP_WRITERS: ReadonlySet<number> = new Set([2, 3, 87, 88]);

/** Map types that only special helpers may take. */
const SPECIAL_MAPS: ReadonlySet<MapTypeName> = new Set([
  "perf_event_array",
  "stack_trace",
  "ringbuf",
  "task_storage",
]);

/** Struct a helper's typed-pointer argument must point to. */
const BTF_ARG_STRUCT: ReadonlyMap<number, string> = new Map([
  [141, "task_struct"], // get_task_stack
  [156, "task_struct"], // task_storage_get
  [157, "task_struct"], // task_storage_delete
]);

/** Struct a helper returns a typed pointer to. */
const BTF_RET_STRUCT: ReadonlyMap<number, string> = new Map([[158, "task_struct"]]);

const TRACING: ReadonlySet<ProgTypeName> = new Set([
  "kprobe",
  "tracepoint",
  "perf_event",
  "raw_tracepoint",
  "tp_btf",
]);

/** Is helper `h` callable from `progType` (license aside)? */
export function helperAllowed(h: HelperProto, progType: ProgTypeName): boolean {
  const only = ONLY_FOR.get(h.id);
  if (only) return only.includes(progType);
  if (h.availability === "base") return true;
  if (progType === "socket_filter") return SOCKET_FILTER_EXTRA.has(h.id);
  return h.availability === "tracing" && TRACING.has(progType);
}

/** `bpf_<name> argument <r>`, for messages. */
function argName(h: HelperProto, r: number): string {
  return `bpf_${h.name} argument ${r}`;
}

/** Fails: argument register r holds the wrong kind of value. */
function wrongArg(pc: number, h: HelperProto, r: number, reg: Reg, expected: string): never {
  return fail(
    "bad-helper-arg",
    pc,
    `${argName(h, r)}: R${r} is ${regTypeName(reg)}, expected ${expected}`,
  );
}

/** Fails with a message about argument r. */
function badArg(pc: number, h: HelperProto, r: number, why: string): never {
  return fail("bad-helper-arg", pc, `${argName(h, r)}: ${why}`);
}

/** Checks and executes `call imm` (a helper call). */
export function execHelperCall(env: CallEnv, st: MachineState, id: number): void {
  const pc = env.pc;
  const h = env.helpers.get(id);
  if (!h || h.name === "unspec") fail("unknown-helper", pc, `there is no helper with id ${id}`);
  if (!helperAllowed(h, env.progType)) {
    fail(
      "helper-not-allowed",
      pc,
      `${env.progType} programs cannot call bpf_${h.name} (helper ${id})`,
    );
  }
  if (h.gplOnly && !env.gpl) {
    fail(
      "helper-not-allowed",
      pc,
      `bpf_${h.name} may only be called by GPL-compatible programs (license)`,
    );
  }
  let map: Reg["map"];
  let released: Reg | undefined;
  let allocSize: number | undefined;
  let constKey: number | undefined;
  let sizeMax = 0;
  const args = h.args;
  for (let i = 0; i < args.length; i++) {
    const r = i + 1;
    const kind = args[i];
    const reg = readReg(st, r, pc);
    switch (kind) {
      case "anything":
        break;
      case "const_map_ptr":
        if (reg.kind !== "map_ptr") wrongArg(pc, h, r, reg, "a map (lddw map)");
        map = reg.map;
        break;
      case "map_key":
      case "map_value":
      case "uninit_map_value": {
        if (!map) badArg(pc, h, r, "no map argument before it");
        if (reg.kind === "scalar" && isZero(reg.val) && nullableArg(h, i)) break;
        if (!isPointer(reg)) wrongArg(pc, h, r, reg, "a pointer to a buffer (stack or map value)");
        if (reg.maybeNull) wrongArg(pc, h, r, reg, "a pointer checked against NULL");
        const size = kind === "map_key" ? map.keySize : map.valueSize;
        if (kind === "map_key") constKey = constantKey(st, reg, size);
        helperMem(
          env,
          st,
          r,
          reg,
          known(size),
          kind === "uninit_map_value" ? "write" : "read",
          h,
          kind === "map_key",
        );
        break;
      }
      case "mem":
      case "mem_or_null":
      case "uninit_mem":
        if (h.releasesArg === i) released = releasedArg(pc, h, r, reg);
        else {
          sizeMax = memArg(env, st, h, i, reg);
          i++; // the size argument is done
        }
        break;
      case "const_size":
      case "const_size_or_zero":
        badArg(pc, h, r, "a size without a buffer before it");
        break;
      case "ctx":
        if (reg.kind !== "ctx") wrongArg(pc, h, r, reg, "the context (R1 at entry)");
        if (reg.off !== 0 || !isZero(reg.val)) {
          badArg(pc, h, r, "pass the context itself, not an offset into it");
        }
        break;
      case "btf_id":
        checkBtfArg(pc, h, id, i, reg);
        break;
      case "const_alloc_size_or_zero":
        if (reg.kind !== "scalar") wrongArg(pc, h, r, reg, "a constant size");
        if (!isConst(reg.val)) badArg(pc, h, r, "the size must be a known constant");
        allocSize = constNumU(reg.val);
        break;
      default:
        badArg(
          pc,
          h,
          r,
          `argument kind ${kind satisfies HelperArg} is not supported by this verifier`,
        );
    }
  }
  if (map) {
    // record_func_map: helpers that change a map need it writable by programs.
    if (MAP_WRITERS.has(id) && ((map.flags ?? 0) & BPF_F_RDONLY_PROG)) {
      fail(
        "bad-helper-arg",
        pc,
        `bpf_${h.name}: ${map.name ? `map ${map.name}` : "the map"} was created with ` +
          "BPF_F_RDONLY_PROG: programs may not change it",
      );
    }
    checkMapCompat(env, id, h, map);
  }

  if (released) releaseRef(st, released.refId);
  const regs = st.regs;
  regs[1] =
    regs[2] =
    regs[3] =
    regs[4] =
    regs[5] =
      UNINIT;
  regs[0] = returnValue(env, st, h, id, map, allocSize);
  // Helpers that fill a buffer return an error or at most its size (do_refine_retval_range).
  if (SIZED_RESULT.has(id)) regs[0] = scalarReg(signedRange(-MAX_ERRNO, sizeMax));
  // Like the kernel, an array lookup with a constant key in range cannot fail.
  if (
    id === 1 && map && (map.type === "array" || map.type === "percpu_array") &&
    constKey !== undefined && constKey < map.maxEntries
  ) {
    regs[0] = { ...regs[0], maybeNull: false, id: 0 };
  }
}

/** A ring buffer record passed back to be submitted or discarded. */
function releasedArg(pc: number, h: HelperProto, r: number, reg: Reg): Reg {
  if (reg.kind !== "ringbuf_mem" || reg.maybeNull || reg.refId === 0) {
    wrongArg(pc, h, r, reg, "a ring buffer record from bpf_ringbuf_reserve, checked against NULL");
  }
  if (reg.off !== 0 || !isZero(reg.val)) {
    badArg(pc, h, r, "pass the record pointer itself, not an offset into it");
  }
  return reg;
}

/**
 * A buffer argument (argument i, register i + 1) and its size (the next
 * argument); returns the size's largest value.
 */
function memArg(env: CallEnv, st: MachineState, h: HelperProto, i: number, reg: Reg): number {
  const pc = env.pc;
  const r = i + 1;
  const kind = h.args[i];
  const next = h.args[i + 1];
  if (next !== "const_size" && next !== "const_size_or_zero") {
    badArg(pc, h, r, "unsupported argument layout (memory without a size)");
  }
  const sizeReg = readReg(st, r + 1, pc);
  const size = checkSize(env, r + 1, sizeReg, next === "const_size_or_zero", h);
  const isNull = reg.kind === "scalar" && isZero(reg.val);
  if (isNull && (kind === "mem_or_null" || nullableArg(h, i))) {
    if (umaxNum(size) !== 0) wrongArg(pc, h, r, reg, "a buffer (NULL needs size 0)");
    return 0;
  }
  if (!isPointer(reg)) {
    wrongArg(pc, h, r, reg, "a pointer to a buffer (stack, map value or ring buffer record)");
  }
  if (reg.maybeNull) wrongArg(pc, h, r, reg, "a pointer checked against NULL");
  helperMem(env, st, r, reg, size, kind === "uninit_mem" ? "write" : "read", h);
  return umaxNum(size);
}

function nullableArg(h: HelperProto, i: number): boolean {
  return h.nullableArgs !== undefined && h.nullableArgs.includes(i);
}

/** A typed kernel pointer argument (ARG_PTR_TO_BTF_ID). */
function checkBtfArg(pc: number, h: HelperProto, id: number, i: number, reg: Reg): void {
  const r = i + 1;
  const nullable = nullableArg(h, i);
  const struct = BTF_ARG_STRUCT.get(id);
  if (!struct) {
    badArg(pc, h, r, `typed kernel pointer arguments of bpf_${h.name} are not supported`);
  }
  if (reg.kind === "scalar" && nullable && isZero(reg.val)) return;
  if (reg.kind !== "btf_id" || reg.struct !== struct) {
    wrongArg(pc, h, r, reg, `a pointer to struct ${struct}`);
  }
  if (reg.maybeNull && !nullable) {
    wrongArg(pc, h, r, reg, `a pointer to struct ${struct} checked against NULL`);
  }
  if (!reg.trusted && !reg.rcu) {
    badArg(
      pc,
      h,
      r,
      "a pointer read from kernel memory is not trusted; use bpf_get_current_task_btf() or a tracepoint argument",
    );
  }
  if (reg.off !== 0) badArg(pc, h, r, "pass the struct pointer itself, not an offset");
}

/**
 * The key's value when the stack holds it as known zero bytes within one
 * slot, or as a number saved with exactly the key's size (the kernel's
 * get_constant_map_key).
 */
function constantKey(st: MachineState, key: Reg, keySize: number): number | undefined {
  if (key.kind !== "stack" || key.frame !== st.frameNo || !isConst(key.val)) return undefined;
  const at = STACK_SIZE + key.off + constNum(key.val);
  if (at < 0 || at >= STACK_SIZE) return undefined;
  if ((at & 7) + keySize <= 8) {
    let zeros = 0;
    while (zeros < keySize && st.stack[at + zeros] === StackByte.Zero) zeros++;
    if (zeros === keySize) return 0;
  }
  if ((at & 7) !== 0) return undefined;
  const saved = st.spills[at >> 3];
  if (!saved || saved.kind !== "scalar" || !isConst(saved.val)) return undefined;
  if (spilledBytes(st, at >> 3) !== keySize) return undefined;
  return constNumU(saved.val);
}

/** The kernel's check_mem_size_reg for ARG_CONST_SIZE(_OR_ZERO). */
function checkSize(env: CallEnv, r: number, reg: Reg, zeroOk: boolean, h: HelperProto): Scalar {
  const pc = env.pc;
  const name = `bpf_${h.name}`;
  if (reg.kind !== "scalar") {
    fail(
      "bad-helper-arg",
      pc,
      `${name} argument ${r}: R${r} is ${regTypeName(reg)}, expected a size`,
    );
  }
  const s = reg.val;
  if (s.sminHi < 0) {
    fail(
      "bad-helper-arg",
      pc,
      `${name} argument ${r}: the size may be negative; bound it (r${r} &= const, or an unsigned check)`,
    );
  }
  if (s.uminHi === 0 && s.uminLo === 0 && !zeroOk) {
    fail(
      "bad-helper-arg",
      pc,
      `${name} argument ${r}: the size may be 0, which ${name} does not accept`,
    );
  }
  if (umaxNum(s) >= MAX_VAR_OFF) {
    fail(
      "bad-helper-arg",
      pc,
      `${name} argument ${r}: the size has no upper bound; bound it first`,
    );
  }
  return s;
}

function checkMapCompat(env: CallEnv, id: number, h: HelperProto, map: MapInfo): void {
  const allowed = HELPER_MAPS.get(id);
  const ok = allowed ? allowed.includes(map.type) : !SPECIAL_MAPS.has(map.type);
  if (!ok) {
    fail(
      "bad-helper-arg",
      env.pc,
      `bpf_${h.name} cannot take a ${map.type} map${map.name ? ` (${map.name})` : ""}`,
    );
  }
}

function releaseRef(st: MachineState, refId: number): void {
  st.dropRef(refId);
  // Every copy of the released pointer becomes a plain number.
  const gone = (r: Reg) => (r.refId === refId && isPointer(r) ? UNKNOWN_SCALAR : r);
  st.forEachValue(gone);
  st.forEachSavedValue(gone); // callers' copies too
}

function returnValue(
  env: CallEnv,
  st: MachineState,
  h: HelperProto,
  id: number,
  map: Reg["map"],
  allocSize: number | undefined,
): Reg {
  switch (h.ret) {
    case "integer":
      // The kernel bounds the CPU number by nr_cpu_ids (possibleCpus).
      if (id === 8) return scalarReg(signedRange(0, env.possibleCpus - 1));
      return UNKNOWN_SCALAR;
    case "void":
      return UNINIT;
    case "map_value_or_null":
      if (!map) fail("bad-helper-arg", env.pc, `bpf_${h.name} returns a map value but got no map`);
      return pointerReg("map_value", { map, maybeNull: true, id: env.nextId() });
    case "alloc_mem_or_null": {
      const ref = env.nextId();
      st.addRef(ref, env.pc);
      return pointerReg("ringbuf_mem", {
        memSize: allocSize ?? 0,
        maybeNull: true,
        id: ref,
        refId: ref,
      });
    }
    case "btf_id": {
      const struct = BTF_RET_STRUCT.get(id);
      if (struct) return pointerReg("btf_id", { struct, trusted: true });
      break;
    }
  }
  return fail(
    "bad-helper-arg",
    env.pc,
    `bpf_${h.name}: its return type (${h.ret}) is not supported by this verifier`,
  );
}
