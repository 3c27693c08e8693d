/**
 * Argument parsing shared by all tools: parseArgs of node:util (strict), the
 * positional `[interval] [count]`, and the common flags. Errors are
 * UsageErrors: one line, exit 2.
 *
 * The parser is ./parse_args.ts, node:util's algorithm and messages without
 * loading node:util's polyfills (5-6 ms of start-up); only node's types are
 * imported here.
 */
import type { parseArgs, ParseArgsConfig } from "node:util";
import { type OptionConfig, parseArgsStrict } from "./parse_args.ts";
import { UsageError } from "./usage.ts";

/** A tool's option declarations, in node:util parseArgs form. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/** The flags every tool has. */
export const COMMON_OPTIONS = {
  json: { type: "boolean" },
  dump: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/** What node:util parseArgs returns for a tool's options (plus the common ones). */
export type ToolArgs<T extends Options> = ReturnType<
  typeof parseArgs<{
    args: string[];
    options: typeof COMMON_OPTIONS & T;
    allowPositionals: true;
    strict: true;
  }>
>;

/** Parses argv against a tool's options (plus the common ones). */
export function parseToolArgs<T extends Options>(argv: string[], options: T): ToolArgs<T> {
  try {
    const all = { ...COMMON_OPTIONS, ...options } as Record<string, OptionConfig>;
    return parseArgsStrict(argv, all, true) as unknown as ToolArgs<T>;
  } catch (e) {
    throw new UsageError(parseErrorMessage(e));
  }
}

function parseErrorMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const unknown = msg.match(/Unknown option '([^']+)'/);
  if (unknown) return `unknown option '${unknown[1]}'`;
  const missing = msg.match(/Option '([^']+)' argument missing/);
  if (missing) return `option '${missing[1]}' needs a value`;
  return msg.split("\n")[0].replace(/\. To specify.*$/, "");
}

/** Parses a positive integer argument, or throws a UsageError naming it. */
export function positiveInt(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`invalid ${what}: '${value}' (expected a positive integer)`);
  }
  return Number(value);
}

/** Parses a PID (a positive integer that names a process); throws a UsageError. */
export function pidArg(value: string, what = "PID"): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || Number(value) > 4194304) {
    throw new UsageError(`invalid ${what}: '${value}'`);
  }
  return Number(value);
}

/** `[interval] [count]` as the bcc tools take them (defaults: forever, once per Ctrl-C). */
export function intervalCount(positionals: string[]): { interval?: number; count?: number } {
  if (positionals.length > 2) {
    throw new UsageError(`unrecognized positional argument: '${positionals[2]}'`);
  }
  const interval = positionals[0] === undefined
    ? undefined
    : positiveInt(positionals[0], "interval");
  const count = positionals[1] === undefined ? undefined : positiveInt(positionals[1], "count");
  return { interval, count };
}
