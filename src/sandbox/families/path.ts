/**
 * Family "path": a path between two nodes of a small undirected graph listed in the instruction.
 *
 *   `path a-e: ab bd ce cf de`  →  `abde`
 *
 * The graph has 5–7 nodes among a–h and 5–8 edges; every edge is written as its two letters in
 * alphabetical order and the edge list is sorted (a canonical form: the same graph always reads the
 * same). The source and the target are never neighbours, so every path has at least two hops, and the
 * graph is a tree of dead ends and detours around one route plus a few random extra edges: finding a
 * path needs a search, while checking one needs a scan of the edge list per hop. The reference is a shortest path
 * (breadth-first, neighbours in alphabetical order); any path meeting all five criteria is as good.
 *
 * Trace (judge), every step a comparison with a neighbour or a group's head, or a copy in order:
 *
 *   1. the walk of the answer (anything but a letter shown as `#`), each node followed by
 *      the nodes before it, copied in order, each marked `+` if it is the same node (a repeat) or `-`;
 *      after the first repeat the nodes are only listed. The walk stops after 8 nodes and `..` follows.
 *   2. each hop in order, its two letters sorted (as the edge list writes them), followed by a scan
 *      of the edge list in order, each edge marked `+` if it is the hop or `-`, up to the first `+`.
 *      A hop with a letter that is no node (not a–h) is marked `-` at once. The hops stop after the
 *      first that is no edge (`none`: fewer than two nodes).
 *   3. the first node against the source, the last against the target.
 *
 *   `path a-e: ab bd ce cf de`, answer `abde`  →
 *     `a b:a- d:a-b- e:a-b-d- | ab:ab+ bd:ab-bd+ de:ab-bd-ce-cf-de+ | a=a+ e=e+`
 *   answer `adbe`  →  `a d:a- b:a-d- e:a-d-b- | ad:ab-bd-ce-cf-de- | a=a+ e=e+`
 *
 * Every edge or node a mark is about is copied right before it (the scans copy in order); the node or
 * hop it is compared with is the head of its group, a few characters back, not written again before
 * every mark as the number scans of "sum" do: that would make references' traces up to 260
 * characters long, past the context (the scans alone average 8.6 edges per reference, at most 24).
 * Nothing is looked up by content. When a judge example would pass 188 characters (walks of 6–8 nodes,
 * about 1% of corruptions), the walk stops earlier.
 *
 * The empty answer's trace is `empty`; it meets no criterion.
 */
import type { Family, Rng, Task } from "../task.js";
import { corruptionTarget, mistakeChain, nearestToTarget, pick, randInt, shuffled } from "../task.js";
import { judgeLength, MAX_JUDGE, sign } from "./common-a.js";
import { inRange } from "./parse-util.js";

export interface PathSpec {
  /** The node the path starts at (a letter a–h). */
  source: string;
  /** The node the path ends at. */
  target: string;
  /** The undirected edges, each as two letters in alphabetical order; the list is sorted. */
  edges: string[];
}

const NODES = "abcdefgh";
const WALK_CAP = 8;
const MAX_ANSWER = 20;
/** The generator's ranges: nodes, hops of the route from source to target, and edges. */
const NODE_COUNT: [number, number] = [5, 7];
const HOPS: [number, number] = [2, 4];
const EDGE_COUNT: [number, number] = [5, 8];

const isNodeLetter = (c: string | undefined): boolean => c !== undefined && c.length === 1 && c >= "a" && c <= "h";
const show = (c: string | undefined): string => (c !== undefined && c.length === 1 && c >= "a" && c <= "z" ? c : "#");
const edgeKey = (x: string, y: string): string => (x < y ? x + y : y + x);

function isEdge(spec: PathSpec, x: string | undefined, y: string | undefined): boolean {
  return isNodeLetter(x) && isNodeLetter(y) && x !== y && spec.edges.includes(edgeKey(x!, y!));
}

/** The graph's nodes (letters of its edges), sorted. */
function graphNodes(spec: PathSpec): string[] {
  return [...new Set(spec.edges.join(""))].sort();
}

function neighbours(spec: PathSpec, v: string): string[] {
  return graphNodes(spec).filter((w) => isEdge(spec, v, w));
}

/** A shortest path (breadth-first, neighbours in alphabetical order), or null if none. */
function shortestPath(spec: PathSpec): string | null {
  const prev = new Map<string, string>([[spec.source, ""]]);
  const queue = [spec.source];
  while (queue.length > 0) {
    const v = queue.shift()!;
    if (v === spec.target) {
      let p = "";
      for (let w = v; w !== ""; w = prev.get(w)!) p = w + p;
      return p;
    }
    for (const w of neighbours(spec, v)) {
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return null;
}

/** Every simple path from source to target (graphs are tiny). */
function allPaths(spec: PathSpec): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const v = p[p.length - 1];
    if (v === spec.target) {
      out.push(p);
      return;
    }
    for (const w of neighbours(spec, v)) if (!p.includes(w)) walk(p + w);
  };
  walk(spec.source);
  return out;
}

/** Hops from `from` to every node it reaches (breadth-first). */
function hopsFrom(spec: PathSpec, from: string): Map<string, number> {
  const hops = new Map<string, number>([[from, 0]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of neighbours(spec, v)) {
      if (!hops.has(w)) {
        hops.set(w, hops.get(v)! + 1);
        queue.push(w);
      }
    }
  }
  return hops;
}

/**
 * The spec of a `path` instruction the generator could have written, or undefined. The generator
 * writes exactly these graphs: edges in canonical form (letters and list sorted, none twice), 5–7
 * nodes, all connected (a spanning tree around a route), source and target distinct and no
 * neighbours, at most 4 hops apart (the route's hops, which a shortest path can only beat), and
 * max(nodes − 1, 5 … 8) edges. Such a task always has an answer: a shortest path of 3–5 nodes.
 */
function parseInstruction(text: string): PathSpec | undefined {
  const m = /^path ([a-h])-([a-h]): ([a-h]{2}(?: [a-h]{2})*)$/.exec(text);
  if (!m) return undefined;
  const spec: PathSpec = { source: m[1], target: m[2], edges: m[3].split(" ") };
  const { source, target, edges } = spec;
  if (!edges.every((e, i) => e[0] < e[1] && (i === 0 || edges[i - 1] < e))) return undefined;
  const nodes = graphNodes(spec);
  if (!inRange(nodes.length, NODE_COUNT[0], NODE_COUNT[1]) || !inRange(edges.length, EDGE_COUNT[0], EDGE_COUNT[1])) return undefined;
  if (source === target || !nodes.includes(source) || !nodes.includes(target) || isEdge(spec, source, target)) return undefined;
  const hops = hopsFrom(spec, source);
  if (hops.size !== nodes.length || !inRange(hops.get(target)!, HOPS[0], HOPS[1])) return undefined;
  return instruction(spec) === text ? spec : undefined;
}

function instruction(spec: PathSpec): string {
  return `path ${spec.source}-${spec.target}: ${spec.edges.join(" ")}`;
}

function check(spec: PathSpec, answer: string): boolean[] {
  const cs = Array.from(answer);
  if (cs.length === 0) return [false, false, false, false, false];
  return [
    cs.length >= 2 && cs.length <= 8 && cs.every(isNodeLetter),
    cs[0] === spec.source && cs[cs.length - 1] === spec.target,
    new Set(cs).size === cs.length,
    isEdge(spec, cs[0], cs[1]),
    cs.length >= 2 && cs.every((c, i) => i === 0 || isEdge(spec, cs[i - 1], c)),
  ];
}

function traceWith(spec: PathSpec, answer: string, cap: number): string {
  const cs = Array.from(answer);
  const shown = cs.slice(0, cap);
  // 1. The walk: each node against the nodes before it, until the first repeat.
  let repeated = false;
  const walk = shown.map((c, i) => {
    const head = show(c);
    if (i === 0 || repeated) return head;
    const marks = shown.slice(0, i).map((d) => `${show(d)}${sign(d === c)}`);
    repeated = shown.slice(0, i).includes(c);
    return `${head}:${marks.join("")}`;
  });
  if (cs.length > cap) walk.push("..");
  // 2. The hops: each scanned for in the edge list, until the first that is no edge.
  const hops: string[] = [];
  for (let i = 1; i < shown.length; i++) {
    const [x, y] = [shown[i - 1], shown[i]];
    if (!isNodeLetter(x) || !isNodeLetter(y)) {
      hops.push(`${edgeKey(show(x), show(y))}:-`);
      break;
    }
    const hop = edgeKey(x, y);
    const at = spec.edges.indexOf(hop);
    const scanned = at < 0 ? spec.edges : spec.edges.slice(0, at + 1);
    hops.push(`${hop}:${scanned.map((e) => `${e}${sign(e === hop)}`).join("")}`);
    if (at < 0) break;
  }
  // 3. The ends.
  const first = `${show(cs[0])}=${spec.source}${sign(cs[0] === spec.source)}`;
  const last = `${show(cs[cs.length - 1])}=${spec.target}${sign(cs[cs.length - 1] === spec.target)}`;
  return `${walk.join(" ")} | ${hops.length > 0 ? hops.join(" ") : "none"} | ${first} ${last}`;
}

function trace(spec: PathSpec, answer: string): string {
  if (answer.length === 0) return "empty";
  // Long answers walk fewer nodes, so that the judge example fits the context.
  for (let cap = WALK_CAP; cap > 2; cap--) {
    const t = traceWith(spec, answer, cap);
    if (judgeLength(instruction(spec), answer, t) <= MAX_JUDGE) return t;
  }
  return traceWith(spec, answer, 2);
}

function generate(rng: Rng): Task<PathSpec> {
  for (;;) {
    const n = randInt(rng, NODE_COUNT[0], NODE_COUNT[1]);
    const nodes = shuffled(rng, [...NODES]).slice(0, n);
    const [source, target] = nodes;
    const hops = randInt(rng, HOPS[0], HOPS[1]);
    const route = [source, ...nodes.slice(2, 2 + hops - 1), target];
    const banned = edgeKey(source, target);
    const edges = new Set<string>();
    for (let i = 1; i < route.length; i++) edges.add(edgeKey(route[i - 1], route[i]));
    // Every other node hangs off a node already reached: dead ends and detours.
    const reached = [...route];
    for (const v of nodes.filter((w) => !route.includes(w))) {
      edges.add(edgeKey(v, pick(rng, reached)));
      reached.push(v);
    }
    // A few extra edges (possible shortcuts and cycles), never source–target.
    const m = randInt(rng, EDGE_COUNT[0], EDGE_COUNT[1]);
    const extra: string[] = [];
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) extra.push(edgeKey(nodes[i], nodes[j]));
    for (const e of shuffled(rng, extra)) {
      if (edges.size >= m) break;
      if (e !== banned) edges.add(e);
    }
    const spec: PathSpec = { source, target, edges: [...edges].sort() };
    const reference = shortestPath(spec);
    if (reference !== null && reference.length >= 3) return { family: "path", instruction: instruction(spec), spec, reference };
  }
}

// ---- corruptions -------------------------------------------------------------------------------

type Op = (rng: Rng, spec: PathSpec, w: string) => string;

const at = (rng: Rng, w: string, from = 0): number => randInt(rng, Math.min(from, Math.max(0, w.length - 1)), Math.max(0, w.length - 1));
const put = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i + 1);
const insert = (w: string, i: number, s: string): string => w.slice(0, i) + s + w.slice(i);
const drop = (w: string, i: number): string => w.slice(0, i) + w.slice(i + 1);

const OPS: readonly Op[] = [
  // a node changed to another node of the graph
  (rng, s, w) =>
    w.length === 0
      ? pick(rng, graphNodes(s))
      : ((i) =>
          put(
            w,
            i,
            pick(
              rng,
              graphNodes(s).filter((c) => c !== w[i]),
            ),
          ))(at(rng, w)),
  // a middle node changed to a neighbour of the node before it (a plausible wrong turn)
  (rng, s, w) => {
    if (w.length < 3) return w;
    const i = randInt(rng, 1, w.length - 2);
    const ns = neighbours(s, w[i - 1]).filter((c) => c !== w[i]);
    return ns.length > 0 ? put(w, i, pick(rng, ns)) : w;
  },
  // a node dropped (a hop skipped)
  (rng, _s, w) => (w.length <= 1 ? w : drop(w, at(rng, w, 1))),
  // ended one node early
  (_rng, _s, w) => (w.length <= 1 ? w : w.slice(0, -1)),
  // a node of the graph added
  (rng, s, w) => insert(w, randInt(rng, 0, w.length), pick(rng, graphNodes(s))),
  // walked on past the target
  (rng, s, w) => {
    const ns = neighbours(s, w[w.length - 1] ?? s.target);
    return w + pick(rng, ns.length > 0 ? ns : graphNodes(s));
  },
  // neighbours swapped
  (rng, _s, w) => {
    if (w.length < 2) return w;
    const i = randInt(rng, 0, w.length - 2);
    return w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2);
  },
  // a node visited twice (went back)
  (rng, _s, w) => {
    if (w.length < 2) return w + w;
    const i = randInt(rng, 1, w.length);
    return insert(w, i, w[randInt(rng, 0, i - 1)]);
  },
  // the path backwards
  (_rng, _s, w) => [...w].reverse().join(""),
  // straight from source to target, or through one neighbour of the source
  (rng, s) => (rng() < 0.5 ? s.source + s.target : s.source + pick(rng, neighbours(s, s.source)) + s.target),
  // a letter outside the graph or not a letter at all
  (rng, _s, w) => {
    const c = pick(rng, [..."ijkmnpxyz0123456789 -"]);
    return rng() < 0.5 ? insert(w, randInt(rng, 0, w.length), c) : put(w, at(rng, w), c);
  },
];

/** Strings a model writes when it has not got the task at all. */
function base(rng: Rng, spec: PathSpec): string {
  switch (randInt(rng, 0, 4)) {
    case 0: // a piece of the instruction
      return pick(rng, [
        "path",
        `${spec.source}-${spec.target}`,
        `${spec.source}-${spec.target}:`,
        spec.edges.slice(0, 2).join(" "),
        pick(rng, spec.edges),
      ]);
    case 1: // the edge list run together
      return spec.edges.slice(0, randInt(rng, 2, 4)).join("");
    case 2: // the graph's letters in order
      return graphNodes(spec).join("");
    case 3: // the source over and over
      return spec.source.repeat(randInt(rng, 2, 4));
    default: // random letters
      return Array.from({ length: randInt(rng, 2, 7) }, () => pick(rng, [...NODES])).join("");
  }
}

/** The closest in gold score to round(5 · (1 − severity)) among a few mutation chains. */
function corrupt(spec: PathSpec, reference: string, rng: Rng, severity: number): string {
  const { s, target } = corruptionTarget(severity);
  if (target === 5) {
    // Not damaged: another path where there is one.
    const others = allPaths(spec).filter((p) => p !== reference && p.length <= 8);
    return others.length > 0 && rng() < 0.7 ? pick(rng, others) : reference;
  }
  return nearestToTarget(pathFamily, spec, reference, target, MAX_ANSWER, () => mistakeChain(rng, spec, reference, s, target, base, OPS));
}

export const pathFamily: Family<PathSpec> = {
  name: "path",
  description: "Write a path from the source to the target of a small undirected graph, as the letters of its nodes.",
  criteria: [
    "2 to 8 letters, each a-h",
    "starts at the source and ends at the target",
    "no node twice",
    "the first hop is an edge",
    "every hop is an edge",
  ],
  generate,
  check,
  trace,
  corrupt,
  parse: parseInstruction,
  solve: (spec) => shortestPath(spec) ?? undefined,
};
