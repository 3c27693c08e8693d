/**
 * Tracepoint `format` files: the layout of the record a tracepoint program
 * receives as its context (`events/<category>/<name>/format` in tracefs).
 *
 * @module
 */

import { tracefsRoot } from "./tracefs_root.ts";

/** One field of a tracepoint record, as the format file describes it. */
export interface TracepointField {
  /** Field name, without array brackets: `comm` for `char comm[16]`. */
  name: string;
  /**
   * C type as written. For arrays the element type (`char` for `char comm[16]`);
   * for `__data_loc char[] filename` it is `char[]` (see {@link isDataLoc}).
   */
  type: string;
  /** Byte offset in the record. */
  offset: number;
  /** Size in bytes of the field (the whole array for arrays, 4 for `__data_loc`). */
  size: number;
  /** Whether the kernel marks the field as signed. */
  signed: boolean;
  /** Number of elements for fixed arrays like `char comm[16]` or `unsigned long args[6]`. */
  arrayLength?: number;
  /**
   * True for `__data_loc` fields: the 4 bytes hold `(length << 16) | offset`,
   * where offset is from the start of the record and points at the data.
   */
  isDataLoc?: boolean;
  /**
   * True for `__rel_loc` fields: like `__data_loc`, but the offset counts from
   * the end of this field.
   */
  isRelLoc?: boolean;
}

/** A parsed tracepoint format file. */
export interface TracepointFormat {
  /** Category (directory under `events/`), e.g. `sched`; empty when unknown. */
  category: string;
  /** Tracepoint name, e.g. `sched_switch`. */
  name: string;
  /** Tracepoint id, the perf_event `config` for PERF_TYPE_TRACEPOINT. */
  id: number;
  /** All fields in file order, `common_*` fields included. */
  fields: TracepointField[];
  /** The named field; throws an Error naming the tracepoint and the fields it has. */
  field(name: string): TracepointField;
}

/** Reads a tracepoint's format; lets the DSL take recorded formats in tests. */
export type TracepointFormatReader = (category: string, name: string) => TracepointFormat;

/** Thrown when `events/<category>/<name>` does not exist in tracefs. */
export class TracepointNotFoundError extends Error {
  /** Tracepoint category, e.g. `sched`. */
  readonly category: string;
  /** Tracepoint name, e.g. `sched_foo`. */
  readonly tracepoint: string;
  /** `detail` says where it was looked for, e.g. `no /sys/kernel/tracing/events/sched/x`. */
  constructor(category: string, name: string, detail: string) {
    super(`tracepoint ${category}:${name} not found (${detail})`);
    this.name = "TracepointNotFoundError";
    this.category = category;
    this.tracepoint = name;
  }
}

const FIELD_LINE = /^\s*field:([^;]*);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(-?\d+);)?/;
/** `<type words> <name>[<len>]`; the name is the last identifier. */
const DECLARATION = /^(.*?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?$/;

function parseField(line: string): TracepointField | undefined {
  const m = FIELD_LINE.exec(line);
  if (!m) return undefined;
  const declaration = m[1].trim();
  const d = DECLARATION.exec(declaration);
  if (!d) throw new Error(`tracepoint format: cannot parse field declaration '${declaration}'`);
  let type = d[1].trim();
  const field: TracepointField = {
    name: d[2],
    type,
    offset: Number(m[2]),
    size: Number(m[3]),
    signed: m[4] !== undefined && m[4] !== "0",
  };
  for (const [prefix, flag] of [["__data_loc", "isDataLoc"], ["__rel_loc", "isRelLoc"]] as const) {
    if (type.startsWith(prefix + " ")) {
      type = type.slice(prefix.length).trim();
      field[flag] = true;
    }
  }
  field.type = type;
  // A length that is not a plain number (old kernels wrote `[sizeof(...)]`) stays unknown.
  if (d[3] !== undefined && /^\s*\d+\s*$/.test(d[3])) field.arrayLength = Number(d[3]);
  return field;
}

function makeFormat(
  category: string,
  name: string,
  id: number,
  fields: TracepointField[],
): TracepointFormat {
  const byName = new Map(fields.map((f) => [f.name, f]));
  return {
    category,
    name,
    id,
    fields,
    field(fieldName: string): TracepointField {
      const found = byName.get(fieldName);
      if (found) return found;
      const own = fields.filter((f) => !f.name.startsWith("common_")).map((f) => f.name);
      const label = category ? `${category}:${name}` : name;
      throw new Error(
        `tracepoint ${label} has no field '${fieldName}' (fields: ${
          own.join(", ") || "none"
        }, plus common_*)`,
      );
    },
  };
}

/**
 * Parses the text of a tracepoint `format` file.
 *
 * @param text contents of `events/<category>/<name>/format`
 * @param category the category, which the file itself does not state
 *
 * @example
 * ```ts
 * import { parseTracepointFormat } from "./format.ts";
 * const fmt = parseTracepointFormat(
 *   "name: x\nID: 7\nformat:\n\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n",
 *   "demo",
 * );
 * fmt.field("pid").offset; // 8
 * ```
 */
export function parseTracepointFormat(text: string, category = ""): TracepointFormat {
  let name = "";
  let id = -1;
  const fields: TracepointField[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("name:")) name = line.slice(5).trim();
    else if (line.startsWith("ID:")) id = Number(line.slice(3).trim());
    else if (line.startsWith("print fmt:")) break;
    else {
      const field = parseField(line);
      if (field) fields.push(field);
    }
  }
  if (!name || !Number.isInteger(id) || id < 0) {
    throw new Error(
      `tracepoint format${
        category ? ` in category ${category}` : ""
      }: missing 'name:' or 'ID:' line`,
    );
  }
  return makeFormat(category, name, id, fields);
}

const SAFE_NAME = /^[A-Za-z0-9_.+-]+$/;
const cache = new Map<string, TracepointFormat>();

/**
 * Reads and parses `events/<category>/<name>/format` from tracefs (cached).
 * Throws {@link TracepointNotFoundError} when the tracepoint does not exist.
 *
 * @example
 * ```ts
 * import { readTracepointFormat } from "./format.ts";
 * const fmt = readTracepointFormat("sched", "sched_switch");
 * const nextPid = fmt.field("next_pid"); // { offset: 56, size: 4, signed: true, ... }
 * ```
 */
export function readTracepointFormat(category: string, name: string): TracepointFormat {
  const key = `${category}:${name}`;
  const cached = cache.get(key);
  if (cached) return cached;
  if (!SAFE_NAME.test(category) || !SAFE_NAME.test(name)) {
    throw new Error(`invalid tracepoint name '${key}' (expected category:name)`);
  }
  const dir = `${tracefsRoot()}/events/${category}/${name}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/format`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new TracepointNotFoundError(category, name, `no ${dir}`);
    }
    throw new Error(
      `cannot read ${dir}/format: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const format = parseTracepointFormat(text, category);
  cache.set(key, format);
  return format;
}

/**
 * A {@link TracepointFormatReader} over recorded format texts, keyed
 * `category:name`, so code that needs formats can be tested without tracefs.
 *
 * @example
 * ```ts
 * import { recordedFormatReader } from "./format.ts";
 * const read = recordedFormatReader({
 *   "sched:sched_demo": "name: sched_demo\nID: 9\nformat:\n\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n",
 * });
 * read("sched", "sched_demo").field("pid").offset; // 8
 * ```
 */
export function recordedFormatReader(texts: Record<string, string>): TracepointFormatReader {
  const parsed = new Map<string, TracepointFormat>();
  return (category, name) => {
    const key = `${category}:${name}`;
    let format = parsed.get(key);
    if (!format) {
      const text = texts[key];
      if (text === undefined) {
        throw new TracepointNotFoundError(category, name, "no recorded format");
      }
      format = parseTracepointFormat(text, category);
      parsed.set(key, format);
    }
    return format;
  };
}
