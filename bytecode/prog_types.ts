/**
 * Program and map types, as `enum bpf_prog_type` / `enum bpf_map_type` in the
 * kernel's uapi `linux/bpf.h` number them. Tools name them by string; the
 * loader turns the string into the number.
 */

/** The program types the toolkit builds. */
export type ProgTypeName =
  | "socket_filter"
  | "kprobe"
  | "tracepoint"
  | "perf_event"
  | "raw_tracepoint"
  | "tp_btf";

/** uapi numbers. `tp_btf` is BPF_PROG_TYPE_TRACING with attach type BPF_TRACE_RAW_TP. */
export const PROG_TYPE: Record<ProgTypeName, number> = {
  socket_filter: 1,
  kprobe: 2,
  tracepoint: 5,
  perf_event: 7,
  raw_tracepoint: 17,
  tp_btf: 26,
};

/** `enum bpf_attach_type` values the loader needs. */
export const ATTACH_TYPE = {
  BPF_PERF_EVENT: 41,
  BPF_TRACE_RAW_TP: 23,
  BPF_TRACE_FENTRY: 24,
  BPF_TRACE_FEXIT: 25,
  BPF_TRACE_KPROBE_MULTI: 42,
} as const;

/** The map types the toolkit creates. */
export type MapTypeName =
  | "hash"
  | "array"
  | "percpu_hash"
  | "percpu_array"
  | "stack_trace"
  | "lru_hash"
  | "lru_percpu_hash"
  | "perf_event_array"
  | "cgroup_array"
  | "task_storage"
  | "ringbuf";

/** uapi numbers of `enum bpf_map_type`. */
export const MAP_TYPE: Record<MapTypeName, number> = {
  hash: 1,
  array: 2,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  cgroup_array: 8,
  lru_hash: 9,
  lru_percpu_hash: 10,
  ringbuf: 27,
  task_storage: 29,
};
