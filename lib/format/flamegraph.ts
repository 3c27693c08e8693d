/**
 * Flame graphs: folded stacks (lib/format/folded.ts) -> a self-contained
 * interactive SVG, in the manner of Brendan Gregg's flamegraph.pl. Each
 * frame is a box as wide as its count's share of the total; children sit on
 * their parent (above it; below it in an icicle graph), siblings sorted by
 * name so identical prefixes merge. Colors come from the frame name (the same
 * function gets the same color in every graph) and a palette: "hot" for CPU,
 * "io" (blues) for off-CPU time, "mem", "js" (kernel/JIT/native by name), and
 * plain hues. The embedded script (flamegraph_script.ts) adds hover details,
 * click to zoom and search.
 *
 * @example
 * ```ts
 * import { parseFolded } from "./folded.ts";
 * import { renderFlameGraph } from "./flamegraph.ts";
 * const svg = renderFlameGraph(parseFolded("main;work 3\nmain;idle 1\n"), { title: "CPU" });
 * ```
 *
 * @module
 */
import type { FoldedStack } from "./folded.ts";
import { flameGraphScript } from "./flamegraph_script.ts";

/** The palettes, by the names flamegraph.pl users know. */
export const PALETTES = [
  "hot",
  "io",
  "mem",
  "js",
  "red",
  "green",
  "blue",
  "aqua",
  "yellow",
  "purple",
  "orange",
] as const;
/** A palette name, as flamegraph.pl's --colors takes it. */
export type Palette = (typeof PALETTES)[number];

/** How to draw. */
export interface FlameGraphOptions {
  /** Heading (default "Flame Graph", or "Icicle Graph" when inverted). */
  title?: string;
  /** Second heading line, in grey; none by default. */
  subtitle?: string;
  /** Image width, px (default 1200). */
  width?: number;
  /** Frame height, px (default 16). */
  frameHeight?: number;
  /** Text size, px (default 12). */
  fontSize?: number;
  /** Frames narrower than this many px are left out (default 0.1). */
  minWidth?: number;
  /** Frame colors (default "hot", as flamegraph.pl). */
  colors?: Palette;
  /** What the counts are (default "samples"). */
  countName?: string;
  /** Label before the frame name in the details line (default "Function:"). */
  nameType?: string;
  /** Icicle graph: the root on top, stacks growing down. */
  inverted?: boolean;
  /** Reverse each stack first (leaf becomes root): who calls the hottest leaves. */
  reverseStacks?: boolean;
}

/** One node of the merged stack tree. */
export interface FlameNode {
  name: string;
  /** Sum of the counts of every stack through this node. */
  value: number;
  children: Map<string, FlameNode>;
}

/** Merges stacks into a tree under a root called "all". */
export function buildFlameTree(stacks: FoldedStack[], reverseStacks = false): FlameNode {
  const root: FlameNode = { name: "all", value: 0, children: new Map() };
  for (const s of stacks) {
    if (!(s.count > 0)) continue;
    root.value += s.count;
    let node = root;
    const frames = reverseStacks ? s.frames.toReversed() : s.frames;
    for (const name of frames) {
      let child = node.children.get(name);
      if (!child) node.children.set(name, child = { name, value: 0, children: new Map() });
      child.value += s.count;
      node = child;
    }
  }
  return root;
}

const XPAD = 10;
const FONT_WIDTH = 0.59;
const FONT_TYPE = "Verdana";
const SEARCH_COLOR = "rgb(230,0,230)";

/** Renders the SVG. */
export function renderFlameGraph(stacks: FoldedStack[], opts: FlameGraphOptions = {}): string {
  const width = opts.width ?? 1200;
  const frameHeight = opts.frameHeight ?? 16;
  const fontSize = opts.fontSize ?? 12;
  const minWidth = opts.minWidth ?? 0.1;
  const palette = opts.colors ?? "hot";
  const countName = opts.countName ?? "samples";
  const inverted = opts.inverted ?? false;
  const title = opts.title ?? (inverted ? "Icicle Graph" : "Flame Graph");
  const root = buildFlameTree(stacks, opts.reverseStacks);
  const total = root.value;

  // Lay out: every node at its x offset (in counts) and depth.
  const plot = width - 2 * XPAD;
  const scale = total > 0 ? plot / total : 0;
  const boxes: { node: FlameNode; x: number; depth: number }[] = [];
  let maxDepth = 0;
  const visit = (node: FlameNode, x: number, depth: number) => {
    if (node.value * scale < minWidth) return;
    boxes.push({ node, x, depth });
    maxDepth = Math.max(maxDepth, depth);
    let cx = x;
    for (const child of [...node.children.values()].sort(byName)) {
      visit(child, cx, depth + 1);
      cx += child.value;
    }
  };
  if (total > 0) visit(root, 0, 0);

  const ypadTop = fontSize * 3 + (opts.subtitle ? fontSize * 2 : 0);
  const ypadBottom = fontSize * 2 + 10;
  const height = (maxDepth + 1) * frameHeight + ypadTop + ypadBottom;
  const yOf = (depth: number) =>
    inverted ? ypadTop + depth * frameHeight : height - ypadBottom - (depth + 1) * frameHeight;

  const out: string[] = [];
  out.push(
    `<?xml version="1.0" standalone="no"?>`,
    `<svg version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">`,
    `<!-- Flame graph by bpftk tools/flamegraph.ts; layout after Brendan Gregg's flamegraph.pl -->`,
    `<defs><linearGradient id="background" y1="0" y2="1" x1="0" x2="0">` +
      `<stop stop-color="${background(palette)[0]}" offset="5%"/>` +
      `<stop stop-color="${background(palette)[1]}" offset="95%"/></linearGradient></defs>`,
    `<style type="text/css">`,
    `text { font-family: ${FONT_TYPE}; font-size: ${fontSize}px; fill: rgb(0,0,0); }`,
    `#title { text-anchor: middle; font-size: ${fontSize + 5}px; }`,
    `#subtitle { text-anchor: middle; fill: rgb(160,160,160); }`,
    `#search, #unzoom { cursor: pointer; }`,
    `#search.active { fill: ${SEARCH_COLOR}; }`,
    `.hide { display: none; }`,
    `g.frame { cursor: pointer; }`,
    `g.frame:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }`,
    `g.frame text { pointer-events: none; }`,
    `g.parent { opacity: 0.5; }`,
    `</style>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="url(#background)"/>`,
    `<text id="title" x="${width / 2}" y="${fontSize * 2}">${xml(title)}</text>`,
  );
  if (opts.subtitle) {
    out.push(
      `<text id="subtitle" x="${width / 2}" y="${fontSize * 4}">${xml(opts.subtitle)}</text>`,
    );
  }
  out.push(
    `<text id="details" x="${XPAD}" y="${height - ypadBottom / 2}"> </text>`,
    `<text id="unzoom" class="hide" x="${XPAD}" y="${fontSize * 2}">Reset Zoom</text>`,
    `<text id="search" x="${width - XPAD - 100}" y="${fontSize * 2}">Search</text>`,
    `<text id="matched" x="${width - XPAD - 100}" y="${height - ypadBottom / 2}"></text>`,
    `<g id="frames">`,
  );
  for (const { node, x, depth } of boxes) {
    const px = XPAD + x * scale, pw = node.value * scale, y = yOf(depth);
    const name = depth === 0 ? "all" : node.name;
    const info = `${name} (${commify(node.value)} ${countName}, ${percent(node.value, total)})`;
    out.push(
      `<g class="frame" data-x="${x}" data-w="${node.value}" data-d="${depth}" ` +
        `data-name="${xml(name)}"><title>${xml(info)}</title>` +
        `<rect x="${px.toFixed(1)}" y="${y}" width="${pw.toFixed(1)}" ` +
        `height="${frameHeight - 1}" fill="${depth === 0 ? ROOT_COLOR : color(name, palette)}" ` +
        `rx="2" ry="2"/>` +
        `<text x="${(px + 3).toFixed(1)}" y="${y + frameHeight / 2 + fontSize / 2 - 2}">` +
        `${xml(fitLabel(name, pw, fontSize))}</text></g>`,
    );
  }
  // The script last: it looks up the elements above when it runs.
  out.push(
    `</g>`,
    `<script type="text/ecmascript"><![CDATA[`,
    flameGraphScript({
      width,
      xpad: XPAD,
      total,
      fontSize,
      fontWidth: FONT_WIDTH,
      minWidth,
      countName: countName,
      nameType: opts.nameType ?? "Function:",
      searchColor: SEARCH_COLOR,
    }),
    `]]></script>`,
    `</svg>`,
    "",
  );
  return out.join("\n");
}

const ROOT_COLOR = "rgb(250,250,250)";

function byName(a: FlameNode, b: FlameNode): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function percent(value: number, total: number): string {
  return `${(100 * value / total).toFixed(2)}%`;
}

/** 1234567 -> "1,234,567" (fractions kept to 2 places). */
export function commify(n: number): string {
  const [int, frac] = String(Math.round(n * 100) / 100).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac ? `${grouped}.${frac}` : grouped;
}

/** The name as it fits in `px` (".." marks a cut), or "" when under 3 characters fit. */
export function fitLabel(name: string, px: number, fontSize: number): string {
  const room = Math.floor((px - 6) / (fontSize * FONT_WIDTH));
  if (room < 3) return "";
  return name.length <= room ? name : `${name.slice(0, room - 2)}..`;
}

/**
 * Text for XML content and attributes: markup characters escaped, and
 * characters XML 1.0 forbids (most control characters, lone surrogates,
 * U+FFFE/U+FFFF) replaced by U+FFFD, so any input gives a well-formed file.
 */
export function xml(text: string): string {
  return text.replace(NOT_XML, "\ufffd").replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Characters XML 1.0 does not allow: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/F. */
const NOT_XML = new RegExp(
  "[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]" +
    "|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]",
  "g",
);

/** FNV-1a of the name, as three fractions in [0, 1): stable colors per function. */
function nameHash(name: string): [number, number, number] {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [(h & 0x3ff) / 1024, ((h >>> 10) & 0x3ff) / 1024, ((h >>> 20) & 0x3ff) / 1024];
}

/** Ranges per channel: base + spread x (one of the hash fractions). */
type Channel = [base: number, spread: number, which: 0 | 1 | 2];
const HUES: Record<Exclude<Palette, "js">, [Channel, Channel, Channel]> = {
  hot: [[205, 50, 2], [0, 230, 0], [0, 55, 1]],
  io: [[80, 60, 0], [80, 60, 0], [190, 55, 1]],
  mem: [[0, 0, 0], [190, 50, 1], [0, 210, 0]],
  red: [[200, 55, 0], [50, 80, 0], [50, 80, 0]],
  green: [[50, 60, 0], [200, 55, 0], [50, 60, 0]],
  blue: [[80, 60, 0], [80, 60, 0], [205, 50, 0]],
  aqua: [[50, 60, 0], [165, 55, 0], [165, 55, 0]],
  yellow: [[175, 55, 0], [175, 55, 0], [50, 20, 0]],
  purple: [[190, 65, 0], [80, 60, 0], [190, 65, 0]],
  orange: [[190, 65, 0], [90, 65, 0], [0, 0, 0]],
};

/** The fill for a frame. */
export function color(name: string, palette: Palette): string {
  if (name === "-" || name === "--") return "rgb(200,200,200)"; // kernel/user delimiter
  const hue = palette === "js" ? jsHue(name) : palette;
  const v = nameHash(name);
  const [r, g, b] = HUES[hue].map(([base, spread, which]) => Math.round(base + spread * v[which]));
  return `rgb(${r},${g},${b})`;
}

/** The "js" palette: kernel frames orange, JIT (JavaScript) green, native yellow. */
function jsHue(name: string): Exclude<Palette, "js"> {
  if (name.endsWith("_[k]")) return "orange";
  if (/_\[j\]$|^(JS|LazyCompile|Function|Script|Builtin|Interpreted|Baseline):/.test(name)) {
    return "green";
  }
  if (name === "[unknown]") return "red";
  return "yellow";
}

function background(palette: Palette): [string, string] {
  return palette === "io" || palette === "blue" || palette === "aqua"
    ? ["#f8f8f8", "#e8e8e8"]
    : palette === "mem" || palette === "green"
    ? ["#eeeeee", "#e0e0ff"]
    : ["#eeeeee", "#eeeeb0"];
}
