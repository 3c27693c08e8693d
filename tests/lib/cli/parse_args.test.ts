/**
 * lib/cli/parse_args.ts against the real thing: for every argument list built
 * from a set of tricky words, node:util parseArgs and
 * ours return the same values and positionals, or throw the same error
 * (a TypeError with the same name, code and message).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { parseArgs } from "node:util";
import { type OptionConfig, parseArgsStrict } from "../../../lib/cli/parse_args.ts";
import { defineTool } from "../../../lib/cli/tool.ts";
import { UsageError } from "../../../lib/cli/usage.ts";

/** The flags every tool has (lib/cli/tool.ts). */
const COMMON_OPTIONS: Record<string, OptionConfig> = {
  json: { type: "boolean" },
  dump: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
};

/** Option sets shaped like the tools' (runqlat, opensnoop) plus the odd cases. */
const CONFIGS: Record<string, Record<string, OptionConfig>> = {
  runqlat: {
    ...COMMON_OPTIONS,
    timestamp: { type: "boolean", short: "T" },
    milliseconds: { type: "boolean", short: "m" },
    pidnss: { type: "boolean" },
    pid: { type: "string", short: "p" },
    cgroup: { type: "string", short: "c" },
  },
  opensnoop: {
    ...COMMON_OPTIONS,
    "flag-filter": { type: "string", short: "f", multiple: true },
    "print-uid": { type: "boolean", short: "U" },
    duration: { type: "string", short: "d" },
  },
  odd: {
    // a long name that is also a letter, defaults, a repeatable boolean
    d: { type: "string" },
    x: { type: "boolean", short: "y", multiple: true },
    level: { type: "string", short: "l", default: "info" },
    quiet: { type: "boolean", short: "q", default: false },
  },
};

const WORDS = [
  "-T",
  "-m",
  "-p",
  "123",
  "-p123",
  "--pid",
  "--pid=5",
  "--pid=-5",
  "-5",
  "-10",
  "-mT",
  "-Tp9",
  "-Tpx",
  "-x",
  "-y",
  "-yy",
  "--nope",
  "--nope=1",
  "--timestamp=1",
  "--json",
  "-vh",
  "-",
  "--",
  "-f",
  "a b",
  "",
  "--=a=b",
  "---",
  "-=",
  "-T=1",
  "-d",
  "--d",
  "--d=",
  "-l",
  "--level=x",
  "-qd",
  "--__proto__",
  "--flag-filter",
  "-U",
];

function outcome(run: () => unknown): unknown {
  try {
    const r = run() as { values: object; positionals: string[] };
    return {
      proto: Object.getPrototypeOf(r.values),
      values: Object.entries(r.values),
      positionals: r.positionals,
    };
  } catch (e) {
    const err = e as Error & { code?: string };
    return {
      error: err.name,
      typeError: err instanceof TypeError,
      code: err.code,
      message: err.message,
    };
  }
}

/**
 * The one deliberate difference: where node:util calls a negative number after
 * an option "ambiguous", ours takes it as the value (the tool then says what is
 * wrong with it).
 */
function deliberate(theirs: unknown): boolean {
  return !!(theirs as { message?: string }).message?.includes("argument is ambiguous");
}

/** The list has a word that looks like a negative number. */
function negativeValue(args: string[]): boolean {
  return args.some((a) => /^-\d/.test(a));
}

/** Words more likely to parse, for the longer lists. */
const LIKELY = ["-T", "-m", "-p", "123", "-p123", "--pid", "--pid=5", "-mT", "-Tp9", "-", "--"];
LIKELY.push("a b", "-f", "-y", "-l", "-q");

/** Every list of up to two WORDS, and of three LIKELY words. */
function* argLists(): Generator<string[]> {
  yield [];
  for (const a of WORDS) {
    yield [a];
    for (const b of WORDS) yield [a, b];
  }
  for (const a of LIKELY) for (const b of LIKELY) for (const c of LIKELY) yield [a, b, c];
}

Deno.test("parseArgsStrict behaves as node:util parseArgs (strict, positionals allowed)", () => {
  let compared = 0, errors = 0;
  for (const [name, options] of Object.entries(CONFIGS)) {
    for (const args of argLists()) {
      const theirs = outcome(() =>
        parseArgs({ args, options, allowPositionals: true, strict: true })
      );
      const ours = outcome(() => parseArgsStrict(args, options, true));
      if (negativeValue(args) && deliberate(theirs)) continue;
      deepEqual(ours, theirs, `${name}: ${JSON.stringify(args)}`);
      compared++;
      if ("error" in (theirs as object)) errors++;
    }
  }
  // Both outcomes were exercised, many times.
  ok(errors > 5000 && compared - errors > 2000, `${compared} compared, ${errors} errors`);
});

Deno.test("parseArgsStrict without positionals behaves as node:util parseArgs", () => {
  for (const args of argLists()) {
    const options = CONFIGS.runqlat;
    const theirs = outcome(() =>
      parseArgs({ args, options, allowPositionals: false, strict: true })
    );
    const ours = outcome(() => parseArgsStrict(args, options, false));
    if (negativeValue(args) && deliberate(theirs)) continue;
    deepEqual(ours, theirs, JSON.stringify(args));
  }
});

Deno.test("a declared tool's parse: one-line usage errors", () => {
  const tool = defineTool({
    name: "t",
    summary: "a test tool",
    examples: [],
    flags: { pid: { short: "p", value: "PID", help: "a PID", parse: (t: string) => t } },
    positionals: { rest: { name: "ARG", help: "anything", parse: (t: string) => [t], rest: true } },
  }, { programs: () => [], run: () => Promise.resolve() });
  const message = (argv: string[]) => {
    try {
      tool.parse(argv);
    } catch (e) {
      ok(e instanceof UsageError);
      return e.message;
    }
    return "no error";
  };
  equal(message(["-x"]), "unknown option '-x'");
  equal(message(["--nope=1"]), "unknown option '--nope'");
  equal(message(["-p"]), "option '-p, --pid' needs a value");
  equal(message(["--json=1"]), "Option '--json' does not take an argument");
  equal(message(["-p", "-x"]), "Option '-p' argument is ambiguous.");
  // A negative number is the value: the option's own check says what is wrong with it.
  deepEqual(tool.parse(["-p", "-5"]).options, { pid: "-5", rest: undefined });
  const { options, common } = tool.parse(["-vp", "42", "1", "--", "-3"]);
  deepEqual(options, { pid: "42", rest: ["1", "-3"] });
  equal(common.verbose, true);
});
