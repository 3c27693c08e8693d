/**
 * `parseArgs` of `node:util`, strict mode, without loading `node:util`.
 *
 * Why it exists: importing `node:util` makes Deno load its Node.js polyfills
 * (~5-6 ms of a tool's ~40 ms start). This is the same algorithm, written
 * against Node's documented behaviour, and it throws the same errors (same
 * `code`, same message text) so callers cannot tell the difference.
 * tests/lib/cli/parse_args.test.ts checks that claim against the real
 * `node:util` parseArgs, argument list by argument list.
 *
 * One deliberate difference: `-p -5` takes "-5" as the value (node:util
 * throws "ambiguous"), so that the tool can say what is wrong with it.
 *
 * Covered: strict mode, `allowPositionals`, boolean and string options,
 * `short`, `multiple`, `default`, `--` and `-` as positionals, short groups
 * (`-mT`, `-Tp123`), `-p123`, `--pid=123`. Not covered (no tool uses them):
 * `tokens`, `allowNegative`, non-strict mode.
 *
 * @module
 */

/** One option's configuration, as `node:util` parseArgs takes it. */
export interface OptionConfig {
  type: "boolean" | "string";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[] | boolean[];
}

/** What {@link parseArgsStrict} returns: option values (null prototype) and positionals. */
export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** An error as `node:util` parseArgs throws it: a TypeError with a `code`. */
export class ParseArgsError extends TypeError {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function invalidValue(message: string): ParseArgsError {
  return new ParseArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", message);
}

/**
 * Parses `args` as `parseArgs({ args, options, allowPositionals, strict: true })`
 * from `node:util` does.
 */
export function parseArgsStrict(
  args: readonly string[],
  options: Record<string, OptionConfig>,
  allowPositionals: boolean,
): ParsedArgs {
  const has = (name: string) => Object.hasOwn(options, name);
  const typeOf = (name: string) => (has(name) ? options[name].type : undefined);
  /** The long name whose `short` is `letter`; an unconfigured letter stands for itself. */
  const longFor = (letter: string) => {
    for (const name in options) if (has(name) && options[name].short === letter) return name;
    return letter;
  };
  const values: ParsedArgs["values"] = { __proto__: null } as unknown as ParsedArgs["values"];
  const positionals: string[] = [];

  /** Checks one option occurrence (`used` is how it was spelled) and stores it. */
  const take = (name: string, value: string | undefined, used: string, inline: boolean) => {
    if (!has(name)) {
      const hint = allowPositionals
        ? `. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- ${
          JSON.stringify(used)
        }`
        : "";
      throw new ParseArgsError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `Unknown option '${used}'${hint}`);
    }
    const config = options[name];
    const spelled = config.short ? `-${config.short}, --${name}` : `--${name}`;
    if (config.type === "string" && value === undefined) {
      throw invalidValue(`Option '${spelled} <value>' argument missing`);
    }
    if (config.type === "boolean" && value !== undefined) {
      throw invalidValue(`Option '${spelled}' does not take an argument`);
    }
    // A value that looks like a negative number is taken as the value (node:util calls it
    // ambiguous), so the option's own check can say what is wrong with it ("-p -1").
    if (
      !inline && value !== undefined && value.length > 1 && value[0] === "-" &&
      !/^-\d/.test(value)
    ) {
      const example = used.startsWith("--")
        ? `'${used}=-XYZ'`
        : `'--${name}=-XYZ' or '${used}-XYZ'`;
      throw invalidValue(
        `Option '${used}' argument is ambiguous.\n` +
          `Did you forget to specify the option argument for '${used}'?\n` +
          `To specify an option argument starting with a dash use ${example}.`,
      );
    }
    if (name === "__proto__") return;
    const stored = value ?? true;
    if (config.multiple) {
      const list = values[name] as (string | boolean)[] | undefined;
      if (list) list.push(stored);
      else values[name] = [stored];
    } else {
      values[name] = stored;
    }
  };

  const queue = args.slice();
  while (queue.length > 0) {
    const arg = queue.shift()!;
    if (arg === "--") {
      if (!allowPositionals && queue.length > 0) throw unexpectedPositional(queue[0]);
      positionals.push(...queue);
      break;
    }
    const dashed = arg.length >= 2 && arg[0] === "-";
    if (dashed && arg[1] !== "-") {
      const name = longFor(arg[1]);
      if (arg.length === 2) {
        // -p [value]: a string option takes the next argument, whatever it is.
        const value = typeOf(name) === "string" && queue.length > 0 ? queue.shift() : undefined;
        take(name, value, arg, false);
      } else if (typeOf(name) === "string") {
        take(name, arg.slice(2), `-${arg[1]}`, true); // -p123
      } else {
        // -mT, -Tp123: one option per letter, until a string option takes the rest.
        const expanded: string[] = [];
        for (let i = 1; i < arg.length; i++) {
          const last = i === arg.length - 1;
          if (typeOf(longFor(arg[i])) !== "string" || last) expanded.push(`-${arg[i]}`);
          else {
            expanded.push(`-${arg.slice(i)}`);
            break;
          }
        }
        queue.unshift(...expanded);
      }
      continue;
    }
    if (dashed && arg.length > 2) {
      if (!arg.includes("=", 3)) {
        const name = arg.slice(2);
        const value = typeOf(name) === "string" && queue.length > 0 ? queue.shift() : undefined;
        take(name, value, arg, false);
      } else {
        // --pid=123 (split at the first "=", as Node does, even for "--=a=b")
        const eq = arg.indexOf("=");
        const name = arg.slice(2, eq);
        take(name, arg.slice(eq + 1), `--${name}`, true);
      }
      continue;
    }
    if (!allowPositionals) throw unexpectedPositional(arg);
    positionals.push(arg);
  }

  for (const name in options) {
    if (has(name) && options[name].default !== undefined && values[name] === undefined) {
      values[name] = options[name].default;
    }
  }
  return { values, positionals };
}

function unexpectedPositional(arg: string): ParseArgsError {
  return new ParseArgsError(
    "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
    `Unexpected argument '${arg}'. This command does not take positional arguments`,
  );
}
