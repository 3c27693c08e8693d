/**
 * A tool is a declaration: name, summary, examples, flags, positionals, the
 * option sets to verify, and a driver that builds and runs its programs.
 * Help, parsing, validation, `--dump`, `deno task verify` and the `bpftk`
 * entry all come from that one declaration, so every tool behaves the same:
 *
 * - `-h/--help/-?` prints bcc-style USAGE / EXAMPLES / OPTIONS, `--usage`
 *   the synopsis, `-V/--version` the version;
 * - bad input is one line on stderr and exit 2 (lib/cli/run.ts);
 * - `--dump` prints the programs without loading them, `-v` the verifier logs,
 *   `--json` the driver's JSON objects (each with "time").
 *
 * @module
 */
import type { BuiltProgram } from "../dsl/builder.ts";
import type { OptionConfig } from "./parse_args.ts";
import { parseArgsStrict } from "./parse_args.ts";
import type { FlagSpec, FlagTable, PositionalSpec, PositionalTable, Values } from "./flags.ts";
import { writeOut } from "./output.ts";
import { runTool } from "./run.ts";
import { COMMON_FLAGS, formatHelp, UsageError } from "./usage.ts";

/** The toolkit's version, for -V. */
export const VERSION = "0.1.0";

/** The flags every tool has, parsed. */
export interface CommonFlags {
  /** --json: JSON objects instead of text. */
  json: boolean;
  /** --dump: print the programs, load nothing. */
  dump: boolean;
  /** -v: the verifiers' logs on stderr. */
  verbose: boolean;
}

/** What a tool declares about itself (the driver adds how it runs). */
export interface ToolInfo<F extends FlagTable, P extends PositionalTable, O> {
  /** Name as typed on the command line. */
  name: string;
  /** One sentence: what the tool shows (the first help line, and `bpftk --list`). */
  summary: string;
  /** Command lines and what each does (EXAMPLES). */
  examples: [string, string][];
  /** The tool's own flags; the common ones are added. */
  flags: F;
  /** Positional arguments, in order (all optional). */
  positionals?: P;
  /** Rules between flags, and the tool's own shape of its options (default: the values). */
  options?: (values: Values<F, P>) => O;
  /** Flag sets that build different programs: `deno task verify` builds each. */
  variants?: string[][];
  /** The tool cannot build without arguments (mysqld_qslower needs a PID): verify only variants. */
  needsArguments?: boolean;
  /** False for tools that load nothing (flamegraph): no --dump, -v, or -A needed. */
  kernel?: boolean;
}

/** How a kind of tool builds and runs (lib/cli/drivers/*). */
export interface Driver<O> {
  /** The help line of --json (what one JSON object stands for). */
  jsonHelp?: string;
  /** The programs for these options, without loading anything. */
  programs(options: O): BuiltProgram[];
  /** Loads, attaches, reports until done. */
  run(options: O, common: CommonFlags, name: string): Promise<void>;
}

/** A declared tool, ready to run. */
export interface Tool<O = unknown> {
  /** Name as typed on the command line. */
  readonly name: string;
  /** One sentence: what the tool shows. */
  readonly summary: string;
  /** Option sets verified by `deno task verify` (the default, `[]`, first unless it needs some). */
  readonly variants: string[][];
  /** Loads programs (false: flamegraph). */
  readonly kernel: boolean;
  /** The help text, under `name` (an alias prints its own name). */
  help(name?: string): string;
  /** Parses and validates argv (UsageError on bad input). */
  parse(argv: string[]): { options: O; common: CommonFlags };
  /** The programs argv would load, built offline (for --dump and verify). */
  programs(argv: string[]): BuiltProgram[];
  /** Runs the tool as its own process: exits with its status. */
  main(argv?: string[], name?: string): Promise<never>;
}

const COMMON_OPTIONS: Record<string, OptionConfig> = {
  json: { type: "boolean" },
  dump: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
  "?": { type: "boolean", short: "?" },
  usage: { type: "boolean" },
  version: { type: "boolean", short: "V" },
};

/** Binds a declaration to its driver. */
export function defineTool<F extends FlagTable, P extends PositionalTable, O>(
  info: ToolInfo<F, P, O>,
  driver: Driver<O>,
): Tool<O> {
  const flags = Object.entries(info.flags) as [string, FlagSpec][];
  const positionals = Object.entries(info.positionals ?? {}) as [string, PositionalSpec][];
  const longOf = (key: string, f: FlagSpec) => f.long ?? key;
  const kernel = info.kernel ?? true;

  const usageLine = (name: string) =>
    [
      name,
      "[-h]",
      ...flags.map(([key, f]) => {
        const spelled = f.short ? `-${f.short}` : `--${longOf(key, f)}`;
        return f.value ? `[${spelled} ${f.value}]` : `[${spelled}]`;
      }),
      ...positionals.map(([, p]) => `[${p.name}${p.rest ? " ..." : ""}]`),
    ].join(" ");

  const help = (name = info.name) =>
    formatHelp({
      name,
      summary: info.summary,
      usage: usageLine(name),
      examples: info.examples.map(([cmd, what]) => [cmd.replace(info.name, name), what]),
      flags: [
        ...flags.map(([key, f]) => ({
          flags: (f.short ? `-${f.short}, ` : "") + `--${longOf(key, f)}` +
            (f.value ? ` ${f.value}` : ""),
          help: f.help,
        })),
        ...positionals.map(([, p]) => ({ flags: p.name, help: p.help })),
      ],
    }, commonFlags());

  const commonFlags = () =>
    kernel
      ? COMMON_FLAGS.map((f) =>
        f.flags === "--json" && driver.jsonHelp ? { ...f, help: driver.jsonHelp } : f
      )
      : COMMON_FLAGS.filter((f) => /--(help|version)/.test(f.flags));

  const parse = (argv: string[]) => {
    const config: Record<string, OptionConfig> = { ...COMMON_OPTIONS };
    for (const [key, f] of flags) {
      config[longOf(key, f)] = { type: f.value ? "string" : "boolean", short: f.short };
    }
    let parsed;
    try {
      parsed = parseArgsStrict(argv, config, true);
    } catch (e) {
      throw new UsageError(parseErrorMessage(e));
    }
    const values: Record<string, unknown> = {};
    for (const [key, f] of flags) {
      const raw = parsed.values[longOf(key, f)];
      const spelled = f.short ? `-${f.short}` : `--${longOf(key, f)}`;
      if (!f.value) values[key] = raw === true;
      else if (raw === undefined) values[key] = f.default;
      else values[key] = f.parse ? f.parse(raw as string, spelled) : raw;
    }
    const rest = positionals.at(-1)?.[1].rest;
    if (!rest && parsed.positionals.length > positionals.length) {
      throw new UsageError(
        `unrecognized positional argument: '${parsed.positionals[positionals.length]}'`,
      );
    }
    positionals.forEach(([key, p], i) => {
      const raw = parsed.positionals[i];
      if (p.rest) {
        const all = parsed.positionals.slice(i).flatMap((a) => p.parse(a, p.name) as unknown[]);
        values[key] = all.length ? all : undefined;
      } else values[key] = raw === undefined ? undefined : p.parse(raw, p.name);
    });
    const options = info.options ? info.options(values as Values<F, P>) : values as unknown as O;
    const v = parsed.values;
    const common = { json: v.json === true, dump: v.dump === true, verbose: v.verbose === true };
    const extra = kernel ? undefined : common.dump ? "--dump" : common.verbose ? "-v" : undefined;
    if (extra ?? (!kernel && common.json)) {
      throw new UsageError(`unknown option '${extra ?? "--json"}'`);
    }
    return { options, common };
  };

  return {
    name: info.name,
    summary: info.summary,
    variants: [...(info.needsArguments ? [] : [[]]), ...(info.variants ?? [])],
    kernel,
    help,
    parse,
    programs: (argv) => driver.programs(parse(argv).options),
    main: (argv = Deno.args, name = info.name) =>
      runTool(name, async () => {
        // Help first: `-h` works whatever else is on the line.
        if (argv.some((a) => a === "-h" || a === "--help" || a === "-?")) {
          return writeOut(help(name));
        }
        if (argv.includes("--usage")) return writeOut(`USAGE: ${usageLine(name)}\n`);
        if (argv.includes("-V") || argv.includes("--version")) {
          return writeOut(`${name} (bpftk) ${VERSION}\n`);
        }
        const { options, common } = parse(argv);
        if (kernel) requireAllPermissions();
        if (common.dump) {
          const { dumpPrograms } = await import("./dump.ts");
          return writeOut(dumpPrograms(driver.programs(options)));
        }
        await driver.run(options, common, name);
      }),
  };
}

/** Declares a tool that loads no BPF programs (flamegraph): its own `run`, and nothing to dump. */
export function plainTool<F extends FlagTable, P extends PositionalTable>(
  info: Omit<ToolInfo<F, P, Values<F, P>>, "kernel" | "variants" | "options">,
  run: (options: Values<F, P>) => Promise<void> | void,
): Tool<Values<F, P>> {
  return defineTool({ ...info, kernel: false }, {
    programs: () => [],
    run: async (options) => await run(options),
  });
}

/** A tool that loads programs reads /sys, calls libbpf through FFI, and more: it needs -A. */
function requireAllPermissions(): void {
  const needed: Deno.PermissionDescriptor[] = [
    { name: "ffi" },
    { name: "read" },
    { name: "write" },
    { name: "env" },
    { name: "run" },
    { name: "sys" },
  ];
  if (needed.some((d) => Deno.permissions.querySync(d).state !== "granted")) {
    throw new Error("run with deno run -A (the tool needs --allow-all)");
  }
}

function parseErrorMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const unknown = msg.match(/Unknown option '([^']+)'/);
  if (unknown && /^-\d/.test(unknown[1])) {
    return `invalid argument '${unknown[1]}': negative`;
  }
  if (unknown) return `unknown option '${unknown[1]}'`;
  const missing = msg.match(/Option '([^']+) <value>' argument missing/);
  if (missing) return `option '${missing[1]}' needs a value`;
  return msg.split("\n")[0].replace(/\. To specify.*$/, "");
}
