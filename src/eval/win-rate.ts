/**
 * Win rates from pairwise preferences, as pure functions.
 *
 * A preference is AlpacaEval's: a number in [1, 2] for (output_1 = reference, output_2 = model),
 * 1 = the reference is better, 2 = the model is better, 1.5 = a tie; soft values (a judge's
 * probability, the mean of two answer orders) are allowed. `y = preference − 1` is the model's win
 * probability for that instruction.
 *
 * - Raw win rate: mean(y), standard error sd(y)/√n with the n − 1 denominator (AlpacaEval's
 *   `preferences.sem()`).
 * - Length-controlled win rate (simplified): fit P(model wins | x) = σ(a + b·x), where x is the
 *   length difference len(model) − len(reference) in characters divided by its standard deviation
 *   (n − 1 denominator), by maximum likelihood with soft labels y (Newton's method; the log-likelihood
 *   Σ y log p + (1 − y) log(1 − p) is concave). The length-controlled win rate is σ(a): the win
 *   probability predicted at zero length difference. Its standard error comes from the delta method
 *   on the inverse Fisher information I = Σ p(1 − p)·[1 x; x x²] at the fit:
 *   se = σ(a)(1 − σ(a))·√((I⁻¹)₀₀).
 *   AlpacaEval 2's official LC win rate also has an instruction-difficulty term, passes the length
 *   difference through tanh, regularises towards its baseline models and averages the predictions
 *   over instructions; this is the plain version (intercept + standardised length difference), so
 *   its numbers are close to, not equal to, the leaderboard's.
 */

export interface RawWinRate {
  /** mean(preference − 1), in [0, 1]. */
  winRate: number;
  /** sd/√n (n − 1 denominator); NaN when n < 2. */
  standardError: number;
  /** Preferences > 1.5 (model better), < 1.5 (reference better), = 1.5 (draws). */
  nWins: number;
  nWinsBase: number;
  nDraws: number;
  n: number;
}

function checkPreferences(preferences: readonly number[]): void {
  preferences.forEach((p, i) => {
    if (!(p >= 1 && p <= 2)) throw new RangeError(`preference ${i} is ${p}, not a number in [1, 2]`);
  });
}

/** Raw win rate of output_2 (the model) over output_1 (the reference). */
export function rawWinRate(preferences: readonly number[]): RawWinRate {
  checkPreferences(preferences);
  const n = preferences.length;
  let sum = 0;
  let nWins = 0;
  let nWinsBase = 0;
  for (const p of preferences) {
    sum += p - 1;
    if (p > 1.5) nWins++;
    else if (p < 1.5) nWinsBase++;
  }
  const winRate = n > 0 ? sum / n : Number.NaN;
  let ss = 0;
  for (const p of preferences) ss += (p - 1 - winRate) ** 2;
  const standardError = n > 1 ? Math.sqrt(ss / (n - 1) / n) : Number.NaN;
  return { winRate, standardError, nWins, nWinsBase, nDraws: n - nWins - nWinsBase, n };
}

export interface LengthControlledWinRate {
  /** σ(intercept): the predicted win rate at zero length difference, in [0, 1]. */
  winRate: number;
  /** Delta-method standard error from the Fisher information. */
  standardError: number;
  intercept: number;
  /** Coefficient of the standardised length difference (per standard deviation). */
  slope: number;
  /** Standard deviation of len(model) − len(reference) in characters (the standardising scale). */
  lengthDiffStd: number;
  /** Newton's method reached a zero gradient (false: separated or degenerate data; the numbers are then not a valid MLE). */
  converged: boolean;
  iterations: number;
  n: number;
}

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Σ y log p + (1 − y) log(1 − p), computed from the logit stably. */
function logLikelihood(a: number, b: number, x: readonly number[], y: readonly number[]): number {
  let ll = 0;
  for (let i = 0; i < x.length; i++) {
    const z = a + b * x[i];
    // log σ(z) = −log(1 + e^−z), log(1 − σ(z)) = −log(1 + e^z)
    const logP = -softplus(-z);
    const logQ = -softplus(z);
    ll += y[i] * logP + (1 - y[i]) * logQ;
  }
  return ll;
}

function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/**
 * Length-controlled win rate of output_2 (the model) over output_1 (the reference): see the module
 * comment. `lengths` are [len(output_1), len(output_2)] per record, in characters.
 */
export function lengthControlledWinRate(
  preferences: readonly number[],
  lengths: readonly (readonly [number, number])[],
  opts: { maxIterations?: number; tolerance?: number } = {},
): LengthControlledWinRate {
  checkPreferences(preferences);
  if (lengths.length !== preferences.length)
    throw new RangeError(`lengthControlledWinRate: ${preferences.length} preferences but ${lengths.length} length pairs`);
  const n = preferences.length;
  if (n === 0) {
    const nan = Number.NaN;
    return { winRate: nan, standardError: nan, intercept: nan, slope: nan, lengthDiffStd: nan, converged: false, iterations: 0, n };
  }
  const y = preferences.map((p) => p - 1);
  const diff = lengths.map(([ref, model]) => model - ref);
  const meanDiff = diff.reduce((s, d) => s + d, 0) / Math.max(1, n);
  const sd = n > 1 ? Math.sqrt(diff.reduce((s, d) => s + (d - meanDiff) ** 2, 0) / (n - 1)) : 0;
  // With no spread in length the slope is unidentified: fit the intercept alone.
  const x = sd > 0 ? diff.map((d) => d / sd) : diff.map(() => 0);
  const withSlope = sd > 0;
  const maxIterations = opts.maxIterations ?? 100;
  const tolerance = opts.tolerance ?? 1e-10;

  let a = 0;
  let b = 0;
  let converged = false;
  let iterations = 0;
  let ll = logLikelihood(a, b, x, y);
  for (; iterations < maxIterations; iterations++) {
    let g0 = 0;
    let g1 = 0;
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(a + b * x[i]);
      const w = p * (1 - p);
      g0 += y[i] - p;
      g1 += (y[i] - p) * x[i];
      h00 += w;
      h01 += w * x[i];
      h11 += w * x[i] * x[i];
    }
    if (Math.abs(g0) + Math.abs(g1) <= tolerance * Math.max(1, n)) {
      converged = true;
      break;
    }
    // Newton step: solve I·Δ = g (I = −Hessian, positive definite unless the data are degenerate).
    let da: number;
    let db: number;
    if (withSlope) {
      const det = h00 * h11 - h01 * h01;
      if (!(det > 0)) break;
      da = (h11 * g0 - h01 * g1) / det;
      db = (h00 * g1 - h01 * g0) / det;
    } else {
      if (!(h00 > 0)) break;
      da = g0 / h00;
      db = 0;
    }
    // Halve the step until the likelihood does not fall (guards the first steps from overshooting).
    let step = 1;
    let next = logLikelihood(a + da, b + db, x, y);
    while (next < ll && step > 1e-8) {
      step /= 2;
      next = logLikelihood(a + step * da, b + step * db, x, y);
    }
    a += step * da;
    b += step * db;
    ll = next;
  }

  let i00 = 0;
  let i01 = 0;
  let i11 = 0;
  for (let i = 0; i < n; i++) {
    const p = sigmoid(a + b * x[i]);
    const w = p * (1 - p);
    i00 += w;
    i01 += w * x[i];
    i11 += w * x[i] * x[i];
  }
  // (I⁻¹)₀₀ = I₁₁ / det for the 2×2 information; 1 / I₀₀ for the intercept alone.
  const varA = withSlope ? i11 / (i00 * i11 - i01 * i01) : 1 / i00;
  const winRate = sigmoid(a);
  const standardError = varA > 0 && Number.isFinite(varA) ? winRate * (1 - winRate) * Math.sqrt(varA) : Number.NaN;
  return { winRate, standardError, intercept: a, slope: b, lengthDiffStd: sd, converged, iterations, n };
}
