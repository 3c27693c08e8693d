/**
 * The script embedded in every flame graph SVG (lib/format/flamegraph.ts):
 * hover shows a frame's name and share, click zooms to a frame (its
 * ancestors stay, greyed, at full width), "Reset Zoom" and Escape undo,
 * "Search" (or Ctrl-F) highlights the frames matching a regular expression
 * and shows how much of the graph they cover.
 *
 * Plain ES5-style JavaScript in a string, so the SVG needs nothing else and
 * runs in any browser; it reads its layout from the `data-*` attributes the
 * renderer writes (x and width in counts, depth) and the config object.
 *
 * @module
 */

/** What the script needs to know about the layout. */
export interface FlameScriptConfig {
  /** Image width and left/right padding, in px. */
  width: number;
  xpad: number;
  /** Sum of all counts (the root frame's width in counts). */
  total: number;
  fontSize: number;
  /** Average character width as a fraction of the font size. */
  fontWidth: number;
  /** Frames narrower than this (px) are hidden. */
  minWidth: number;
  /** "samples", "us", ... */
  countName: string;
  /** "Function:" */
  nameType: string;
  /** The highlight color of search matches. */
  searchColor: string;
}

/** The script for an SVG with this config (no "]]>" inside, safe in CDATA). */
export function flameGraphScript(config: FlameScriptConfig): string {
  const json = JSON.stringify(config).replaceAll("]]>", "]]\\u003e").replaceAll("<", "\\u003c");
  return `(function () {
"use strict";
var cfg = ${json};
var svg = document.documentElement;
var details = document.getElementById("details");
var matchedText = document.getElementById("matched");
var unzoomButton = document.getElementById("unzoom");
var searchButton = document.getElementById("search");
var plot = cfg.width - 2 * cfg.xpad;
var frames = [];
var nodes = svg.querySelectorAll("g.frame");
for (var i = 0; i < nodes.length; i++) {
  var g = nodes[i];
  var rect = g.querySelector("rect");
  frames.push({
    g: g, rect: rect, text: g.querySelector("text"),
    x: Number(g.getAttribute("data-x")), w: Number(g.getAttribute("data-w")),
    d: Number(g.getAttribute("data-d")), name: g.getAttribute("data-name"),
    fill: rect.getAttribute("fill"),
  });
}
var byElement = new Map();
frames.forEach(function (f) { byElement.set(f.g, f); });
var zoomed = null;
var searchTerm = null;

function commify(n) {
  var s = String(Math.round(n * 100) / 100);
  var parts = s.split(".");
  parts[0] = parts[0].replace(/\\B(?=(\\d{3})+(?!\\d))/g, ",");
  return parts.join(".");
}
function share(w) { return (100 * w / cfg.total).toFixed(2) + "%"; }
function label(name, px) {
  var room = Math.floor((px - 6) / (cfg.fontSize * cfg.fontWidth));
  if (room < 3) return "";
  return name.length <= room ? name : name.slice(0, room - 2) + "..";
}
function layout() {
  var zx = zoomed ? zoomed.x : 0, zw = zoomed ? zoomed.w : cfg.total, zd = zoomed ? zoomed.d : 0;
  var scale = plot / zw, eps = zw * 1e-9;
  frames.forEach(function (f) {
    var px, pw, parent = false;
    if (f.d >= zd && f.x >= zx - eps && f.x + f.w <= zx + zw + eps) {
      px = cfg.xpad + (f.x - zx) * scale;
      pw = f.w * scale;
    } else if (f.d < zd && f.x <= zx + eps && f.x + f.w >= zx + zw - eps) {
      px = cfg.xpad;
      pw = plot;
      parent = true;
    } else {
      f.g.style.display = "none";
      return;
    }
    if (pw < cfg.minWidth) {
      f.g.style.display = "none";
      return;
    }
    f.g.style.display = "";
    f.g.classList.toggle("parent", parent);
    f.rect.setAttribute("x", px.toFixed(1));
    f.rect.setAttribute("width", pw.toFixed(1));
    f.text.setAttribute("x", (px + 3).toFixed(1));
    f.text.textContent = label(f.name, pw);
  });
  unzoomButton.classList.toggle("hide", !zoomed);
}
function zoom(f) {
  zoomed = f.d === 0 ? null : { x: f.x, w: f.w, d: f.d };
  layout();
}
function unzoom() {
  zoomed = null;
  layout();
}
function search(term) {
  searchTerm = term;
  var re = null;
  if (term) {
    try { re = new RegExp(term); } catch (e) { re = null; }
  }
  var spans = [];
  frames.forEach(function (f) {
    var hit = re !== null && re.test(f.name);
    f.rect.setAttribute("fill", hit ? cfg.searchColor : f.fill);
    if (hit) spans.push(f);
  });
  // The share of the graph under matches: overlapping (nested) matches count once.
  spans.sort(function (a, b) { return a.x - b.x || b.w - a.w; });
  var sum = 0, end = -1;
  spans.forEach(function (f) {
    if (f.x >= end) { sum += f.w; end = f.x + f.w; }
    else if (f.x + f.w > end) { sum += f.x + f.w - end; end = f.x + f.w; }
  });
  matchedText.textContent = re ? "Matched: " + share(sum) : "";
  searchButton.classList.toggle("active", !!re);
  searchButton.textContent = re ? "Reset Search" : "Search";
}
function askSearch() {
  if (searchTerm) { search(null); return; }
  var term = prompt("Enter a search term (a regular expression):", "");
  if (term) search(term);
}
function frameOf(target) {
  var g = target && target.closest ? target.closest("g.frame") : null;
  return g ? byElement.get(g) : undefined;
}
svg.addEventListener("mouseover", function (e) {
  var f = frameOf(e.target);
  if (f) {
    details.textContent = cfg.nameType + " " + f.name + " (" + commify(f.w) + " " +
      cfg.countName + ", " + share(f.w) + ")";
  }
});
svg.addEventListener("mouseout", function (e) {
  if (frameOf(e.target)) details.textContent = " ";
});
svg.addEventListener("click", function (e) {
  if (e.target === unzoomButton) { unzoom(); return; }
  if (e.target === searchButton) { askSearch(); return; }
  var f = frameOf(e.target);
  if (f) zoom(f);
});
window.addEventListener("keydown", function (e) {
  if ((e.ctrlKey && e.key === "f") || e.key === "F3") {
    e.preventDefault();
    askSearch();
  } else if (e.key === "Escape") {
    if (searchTerm) search(null); else unzoom();
  }
});
layout();
})();`;
}
