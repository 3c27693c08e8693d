/** Usage errors (exit 2) and the bcc-style help text every tool prints for -h. */

/** Bad input from the operator: printed as one line, exit status 2. */
export class UsageError extends Error {
  /** `message` is the one line printed after the tool's name. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One flag in a tool's help. */
export interface FlagHelp {
  /** The flags as the help shows them ("-p, --pid PID"). */
  flags: string;
  /** What the flag does, in a few words. */
  help: string;
}

/** What `-h` prints, in bcc's USAGE / EXAMPLES form. */
export interface ToolHelp {
  /** Tool name, as typed on the command line. */
  name: string;
  /** One sentence: what the tool measures. */
  summary: string;
  /** The synopsis after "USAGE:", tool name first ("runqlat [-h] [interval] [count]"). */
  usage: string;
  /** Command lines and what each does: the EXAMPLES section. */
  examples: [string, string][];
  /** The tool's own flags; the common ones are appended. */
  flags: FlagHelp[];
}

/** The flags every tool shares, appended to each tool's own. */
export const COMMON_FLAGS: FlagHelp[] = [
  { flags: "--json", help: "print JSON objects (one per line) instead of text" },
  { flags: "--dump", help: "print the BPF programs' disassembly and exit" },
  { flags: "-v, --verbose", help: "show the kernel verifier log of each program" },
  { flags: "-V, --version", help: "print the version and exit" },
  { flags: "-h, --help", help: "show this help" },
];

/** Renders the help text; `common` are the shared flags appended to the tool's own. */
export function formatHelp(h: ToolHelp, common: FlagHelp[] = COMMON_FLAGS): string {
  const width = Math.max(...h.examples.map(([cmd]) => cmd.length));
  const flags = [...h.flags, ...common];
  const flagWidth = Math.max(...flags.map((f) => f.flags.length));
  return [
    h.summary,
    "",
    ...wrapUsage(`USAGE: ${h.usage}`),
    "",
    "EXAMPLES:",
    ...h.examples.map(([cmd, what]) => `    ${cmd.padEnd(width)}  # ${what}`),
    "",
    "OPTIONS:",
    ...flags.map((f) => `  ${f.flags.padEnd(flagWidth)}  ${f.help}`),
    "",
  ].join("\n");
}

/** Wraps the usage line under 80 columns, continuation lines indented past "USAGE: ". */
function wrapUsage(line: string, width = 79): string[] {
  const lines: string[] = [];
  let current = "";
  // A bracketed group ("[-n NAME]") is one word: never cut inside it.
  for (const word of line.match(/\[[^\]]*\]|\S+/g) ?? []) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = " ".repeat(7 + line.slice(7).indexOf(" ") + 1) + word;
    } else {
      current = current ? `${current} ${word}` : word;
    }
  }
  return [...lines, current];
}
