/**
 * Next-token selection from one row of logits: greedy, or temperature → top-k → top-p → categorical
 * (the order Hugging Face and vLLM apply them). Pure functions over a scratch buffer.
 */

export interface SamplingParams {
  /** Softmax temperature; 0 means greedy. Default 1. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability sums to ≥ topP; 1 = off. */
  topP: number;
}

export interface Scratch {
  probs: Float32Array;
  order: Int32Array;
}

export function makeScratch(V: number): Scratch {
  return { probs: new Float32Array(V), order: new Int32Array(V) };
}

/** log Σ exp(logits) over a row, stable. */
export function logSumExp(logits: Float32Array, off: number, V: number): number {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > mx) mx = logits[off + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[off + v] - mx);
  return mx + Math.log(s);
}

export function argmax(logits: Float32Array, off: number, V: number): number {
  let best = 0;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) {
    if (logits[off + v] > mx) {
      mx = logits[off + v];
      best = v;
    }
  }
  return best;
}

/**
 * The distribution actually sampled from: writes normalised probabilities into `s.probs` (zero for
 * tokens removed by top-k/top-p) and returns how many tokens survived. Exposed for tests.
 */
export function samplingDistribution(logits: Float32Array, off: number, V: number, p: SamplingParams, s: Scratch): number {
  const { probs, order } = s;
  const invT = 1 / p.temperature;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > mx) mx = logits[off + v];
  let sum = 0;
  for (let v = 0; v < V; v++) {
    const e = Math.exp((logits[off + v] - mx) * invT);
    probs[v] = e;
    sum += e;
  }
  for (let v = 0; v < V; v++) probs[v] /= sum;
  const truncK = p.topK > 0 && p.topK < V;
  const truncP = p.topP < 1;
  if (!truncK && !truncP) return V;

  // Sort token ids by probability, descending; ties by id so results never depend on sort stability.
  for (let v = 0; v < V; v++) order[v] = v;
  order.sort((a, b) => probs[b] - probs[a] || a - b);
  let keep = truncK ? p.topK : V;
  if (truncP) {
    let cum = 0;
    for (let i = 0; i < keep; i++) {
      cum += probs[order[i]];
      if (cum >= p.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += probs[order[i]];
  for (let i = keep; i < V; i++) probs[order[i]] = 0;
  for (let i = 0; i < keep; i++) probs[order[i]] /= kept;
  return keep;
}

/** Draw one token id from the probabilities in `probs` with a uniform u ∈ [0, 1). */
export function drawCategorical(probs: Float32Array, V: number, u: number): number {
  let cum = 0;
  let last = 0;
  for (let v = 0; v < V; v++) {
    if (probs[v] <= 0) continue;
    cum += probs[v];
    last = v;
    if (u < cum) return v;
  }
  return last; // rounding left u ≥ cum: the last token with mass
}

/** Pick the next token. Greedy when temperature is 0. */
export function sampleToken(logits: Float32Array, off: number, V: number, p: SamplingParams, rng: () => number, s: Scratch): number {
  if (p.temperature === 0) return argmax(logits, off, V);
  samplingDistribution(logits, off, V, p, s);
  return drawCategorical(s.probs, V, rng());
}
