/**
 * The DPO loss family, as pure functions of per-sequence log-probabilities (TRL's names and semantics).
 * Every loss here depends on a pair only through Δ = (log π(y_c) − log π(y_r)) − (log π_ref(y_c) − log π_ref(y_r))
 * and x = βΔ, the difference of the implicit rewards β·(log π − log π_ref); the trainer turns the returned
 * gradients with respect to the summed log-probs into a per-token gradient on each response token.
 *
 * - sigmoid (DPO, Rafailov et al. 2023): −log σ(x), the Bradley–Terry likelihood of the preference under the
 *   implicit reward. With label smoothing ε it becomes cDPO (Mitchell's note): the label is assumed flipped with
 *   probability ε, so the loss mixes −log σ(x) and −log σ(−x) and stops pushing the margin once it is large.
 * - ipo (IPO, Azar et al. 2023): (Δ − 1/(2β))², a squared regression of the log-ratio gap onto a fixed target;
 *   it does not saturate, so it cannot overfit deterministic preferences by driving Δ to infinity. On
 *   length-averaged log-probs, as TRL does.
 * - hinge (SLiC, Zhao et al. 2023): max(0, 1 − x), a margin loss that ignores pairs once they are separated.
 * - robust (Chowdhury et al. 2024): like cDPO but the ε-weighted term is subtracted and the whole divided by
 *   1 − 2ε, which makes the loss an unbiased estimate of the clean-label loss under flip rate ε.
 * - soft_label (CREAM, Wang et al. 2024): a per-pair soft target C ∈ [0, 1] instead of a hard "chosen wins";
 *   C·(−log σ(x)) + (1 − C)·(−log σ(−x)). CREAM sets C from the agreement of the judge across rounds, so an
 *   uncertain pair (C = 0.5) pulls Δ to 0 instead of teaching a guess.
 * - RPO (Pang et al. 2024, "Iterative Reasoning Preference Optimization"): any of the above plus α times the
 *   per-token NLL of the chosen response, against the known drift of DPO that lowers the chosen likelihood too.
 * - SCIR consistency penalty (ours, for the SCIR method; src/pairs/scir.ts): any of the above plus
 *   λ_c·J(q, σ(x)) + λ_h·H(σ(x)), where q is the judge's preference probability of the pair, J the symmetric KL
 *   (Jeffreys divergence) between the Bernoulli distributions of the judge and of the implicit reward, and H the
 *   entropy of the implicit reward's Bernoulli (see `consistencyPenalty`).
 */

export type DpoLossType = "sigmoid" | "ipo" | "hinge" | "robust" | "soft_label";

export interface DpoLossConfig {
  /** β: temperature of the implicit reward β·(log π − log π_ref). Default 0.1 (DPO paper, Rafailov et al. 2023). */
  beta: number;
  /** TRL loss_type. */
  lossType: DpoLossType;
  /** ε: label smoothing for "sigmoid" (cDPO) and "robust" (Chowdhury et al. 2024); in [0, 0.5). Default 0. Ignored by the other losses, as in TRL. */
  labelSmoothing: number;
  /** Weight of an NLL term on the chosen response (RPO, Pang et al. 2024, TRL rpo_alpha); null/0 = off. */
  rpoAlpha: number | null;
  /** Divide each sequence log-prob by its response length before the loss (IPO always does, as in TRL). Default false. */
  lengthNormalize: boolean;
  /**
   * SCIR's consistency penalty (absent/null = off): `weight` λ_c of the symmetric KL between the judge's and the
   * implicit reward's preference probabilities, `confidence` λ_h of the implicit one's entropy. Needs
   * `judgeProbs` in the batch. Not a TRL option.
   */
  consistency?: { weight: number; confidence: number } | null;
}

export const defaultDpoLoss: DpoLossConfig = { beta: 0.1, lossType: "sigmoid", labelSmoothing: 0, rpoAlpha: null, lengthNormalize: false };

export const dpoLossTypes: readonly DpoLossType[] = ["sigmoid", "ipo", "hinge", "robust", "soft_label"];

export interface PairLogps {
  /** (n) Summed log-prob of each chosen response under the policy. */
  policyChosen: ArrayLike<number>;
  /** (n) Summed log-prob of each rejected response under the policy. */
  policyRejected: ArrayLike<number>;
  /** (n) Same under the reference model (precomputed). */
  refChosen: ArrayLike<number>;
  refRejected: ArrayLike<number>;
  /** (n) Response lengths in tokens (≥ 1). */
  chosenTokens: ArrayLike<number>;
  rejectedTokens: ArrayLike<number>;
  /** (n) Per-pair weights ≥ 0, default 1. */
  weights?: ArrayLike<number>;
  /** (n) Soft labels C ∈ [0, 1]; required for "soft_label" (CREAM), ignored otherwise. */
  labels?: ArrayLike<number>;
  /** (n) The judge's preference probabilities q ∈ (0, 1); required when the consistency penalty is on (SCIR). */
  judgeProbs?: ArrayLike<number>;
}

/** TRL's metric names; means over the pairs of the batch (unweighted). */
export interface DpoMetrics {
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  "rewards/accuracies": number;
  "logps/chosen": number;
  "logps/rejected": number;
  loss: number;
  /** Mean per-token NLL of the chosen responses; reported only when the RPO term is on. */
  nll_loss?: number;
  /** Mean SCIR consistency penalty; reported only when it is on. */
  "scir/penalty"?: number;
}

export interface DpoLossResult {
  /** Σ_i w_i·ℓ_i / denominator. */
  loss: number;
  /** (n) Per-pair ℓ_i before weight and denominator, including the RPO term. */
  losses: Float64Array;
  /** (n) d(loss)/d(policyChosen_i) with respect to the SUMMED log-prob (length normalisation folded in). */
  dPolicyChosen: Float64Array;
  /** (n) d(loss)/d(policyRejected_i), likewise. */
  dPolicyRejected: Float64Array;
  metrics: DpoMetrics;
}

/** Plain validation (no zod, so the trainer's hot path can call it): throws a RangeError naming the field. */
export function checkDpoLossConfig(cfg: DpoLossConfig): void {
  const { beta, lossType, labelSmoothing, rpoAlpha, lengthNormalize } = cfg;
  if (!(beta > 0)) throw new RangeError(`dpo.beta must be > 0 (got ${beta})`);
  if (!Number.isFinite(beta)) throw new RangeError(`dpo.beta must be finite (got ${beta})`);
  if (!dpoLossTypes.includes(lossType)) {
    throw new RangeError(`dpo.lossType must be one of ${dpoLossTypes.join(", ")} (got ${String(lossType)})`);
  }
  // robust divides by 1 − 2ε; at ε = 0.5 the labels carry no information at all.
  if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
    throw new RangeError(`dpo.labelSmoothing must be in [0, 0.5) (got ${labelSmoothing})`);
  }
  if (rpoAlpha !== null && !(rpoAlpha >= 0 && Number.isFinite(rpoAlpha))) {
    throw new RangeError(`dpo.rpoAlpha must be null or a finite number ≥ 0 (got ${rpoAlpha})`);
  }
  if (typeof lengthNormalize !== "boolean") throw new RangeError(`dpo.lengthNormalize must be a boolean (got ${String(lengthNormalize)})`);
  const c = cfg.consistency;
  if (c) {
    for (const k of ["weight", "confidence"] as const) {
      if (!(c[k] >= 0 && Number.isFinite(c[k]))) throw new RangeError(`dpo.consistency.${k} must be a finite number ≥ 0 (got ${c[k]})`);
    }
  }
}

/**
 * SCIR's consistency penalty of one pair, as a function of x = βΔ (the implicit-reward margin, Δ the DPO log-ratio
 * margin) and q, the judge's probability that chosen beats rejected:
 *
 *   p = σ(x)                                  the implicit reward's preference probability
 *   J(q, p) = KL(q‖p) + KL(p‖q) = (q − p)·(logit q − x)      symmetric KL of Bernoulli(q) and Bernoulli(p)
 *   H(p) = −p log p − (1 − p) log(1 − p) = p·softplus(−x) + (1 − p)·softplus(x)
 *   P(x; q) = λ_c·J(q, p) + λ_h·H(p)
 *
 *   dJ/dx = −p(1 − p)(logit q − x) − (q − p)        dH/dx = −x·p(1 − p)
 *
 * J is zero exactly when the two reward models agree (p = q) and grows on both sides (unlike the one-sided
 * cross-entropy, it also resists the implicit reward overshooting a hesitant judge); H pulls the implicit
 * reward away from 0.5, towards a confident verdict (its gradient is 0 at x = 0, so it only sharpens a
 * direction the other terms chose).
 */
export function consistencyPenalty(x: number, q: number, weight: number, confidence: number): { value: number; dx: number } {
  if (!(q > 0 && q < 1)) throw new RangeError(`consistencyPenalty: the judge probability must be in (0, 1) (got ${q})`);
  const p = sigmoid(x);
  const pq = p * (1 - p);
  const logitQ = Math.log(q) - Math.log1p(-q);
  const j = (q - p) * (logitQ - x);
  const h = p * softplus(-x) + (1 - p) * softplus(x);
  return {
    value: weight * j + confidence * h,
    dx: weight * (-pq * (logitQ - x) - (q - p)) + confidence * (-x * pq),
  };
}

/**
 * The loss, its per-pair values, its gradient with respect to the policy's summed log-probs, and TRL's metrics.
 * `denominator` (default n) divides the weighted sum: pass the full batch size when the batch is split into
 * micro-batches, so that the micro-batches' losses and gradients add up to the full batch's.
 */
export function dpoLoss(batch: PairLogps, cfg: DpoLossConfig, denominator?: number): DpoLossResult {
  checkDpoLossConfig(cfg);
  const { lossType, beta } = cfg;
  const pen = cfg.consistency && (cfg.consistency.weight > 0 || cfg.consistency.confidence > 0) ? cfg.consistency : null;
  const n = checkPairLogps(batch, lossType === "soft_label", pen !== null);
  const denom = denominator ?? n;
  if (!(denom > 0 && Number.isFinite(denom))) throw new RangeError(`dpo: denominator must be a finite number > 0 (got ${denom})`);
  const eps = cfg.labelSmoothing;
  const rpo = cfg.rpoAlpha ?? 0;
  const normalize = cfg.lengthNormalize || lossType === "ipo";
  const { policyChosen, policyRejected, refChosen, refRejected, chosenTokens, rejectedTokens, weights, labels } = batch;

  const losses = new Float64Array(n);
  const dPolicyChosen = new Float64Array(n);
  const dPolicyRejected = new Float64Array(n);
  let weighted = 0;
  let sumChosenReward = 0;
  let sumRejectedReward = 0;
  let correct = 0;
  let sumLogpChosen = 0;
  let sumLogpRejected = 0;
  let sumNll = 0;
  let sumPenalty = 0;
  const ipoTarget = 1 / (2 * beta);
  const robustScale = 1 / (1 - 2 * eps);

  for (let i = 0; i < n; i++) {
    const lenC = chosenTokens[i];
    const lenR = rejectedTokens[i];
    // d(used logp)/d(summed logp): 1/length when normalised.
    const sc = normalize ? 1 / lenC : 1;
    const sr = normalize ? 1 / lenR : 1;
    const pc = policyChosen[i] * sc;
    const pr = policyRejected[i] * sr;
    const rc = refChosen[i] * sc;
    const rr = refRejected[i] * sr;
    const delta = pc - pr - (rc - rr);
    const x = beta * delta;

    // l = ℓ_i, g = dℓ_i/dΔ.
    let l = 0;
    let g = 0;
    switch (lossType) {
      case "sigmoid":
        l = (1 - eps) * softplus(-x) + eps * softplus(x);
        g = beta * (eps * sigmoid(x) - (1 - eps) * sigmoid(-x));
        break;
      case "robust":
        l = ((1 - eps) * softplus(-x) - eps * softplus(x)) * robustScale;
        g = -beta * ((1 - eps) * sigmoid(-x) + eps * sigmoid(x)) * robustScale;
        break;
      case "hinge":
        // At the kink x = 1 take the zero subgradient, as torch.relu does.
        l = x < 1 ? 1 - x : 0;
        g = x < 1 ? -beta : 0;
        break;
      case "ipo":
        l = (delta - ipoTarget) * (delta - ipoTarget);
        g = 2 * (delta - ipoTarget);
        break;
      case "soft_label": {
        const c = (labels as ArrayLike<number>)[i];
        l = c * softplus(-x) + (1 - c) * softplus(x);
        g = beta * ((1 - c) * sigmoid(x) - c * sigmoid(-x));
        break;
      }
      default:
        throw new RangeError(`dpo.lossType: unknown "${String(lossType)}"`);
    }
    if (pen) {
      const r = consistencyPenalty(x, (batch.judgeProbs as ArrayLike<number>)[i], pen.weight, pen.confidence);
      l += r.value;
      g += beta * r.dx;
      sumPenalty += r.value;
    }

    // RPO: per-token NLL of the chosen response, always on the raw sum divided by its own length. TRL instead
    // averages over all chosen tokens of the batch; the per-pair mean is used here because it is a sum of
    // per-pair terms, so micro-batches with a shared denominator add up exactly to the full batch.
    const nll = -policyChosen[i] / lenC;
    sumNll += nll;
    let dNll = 0;
    if (rpo > 0) {
      l += rpo * nll;
      dNll = -rpo / lenC;
    }

    const w = weights ? weights[i] : 1;
    const k = w / denom;
    losses[i] = l;
    weighted += w * l;
    dPolicyChosen[i] = k * (g * sc + dNll);
    dPolicyRejected[i] = -k * g * sr;

    const chosenReward = beta * (pc - rc);
    const rejectedReward = beta * (pr - rr);
    sumChosenReward += chosenReward;
    sumRejectedReward += rejectedReward;
    if (chosenReward > rejectedReward) correct++;
    sumLogpChosen += pc;
    sumLogpRejected += pr;
  }

  const loss = weighted / denom;
  const metrics: DpoMetrics = {
    "rewards/chosen": sumChosenReward / n,
    "rewards/rejected": sumRejectedReward / n,
    "rewards/margins": (sumChosenReward - sumRejectedReward) / n,
    "rewards/accuracies": correct / n,
    "logps/chosen": sumLogpChosen / n,
    "logps/rejected": sumLogpRejected / n,
    loss,
  };
  if (rpo > 0) metrics.nll_loss = sumNll / n;
  if (pen) metrics["scir/penalty"] = sumPenalty / n;
  return { loss, losses, dPolicyChosen, dPolicyRejected, metrics };
}

/** log(1 + e^x) without overflow for large x or loss of precision for very negative x. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** σ(x), evaluated so that exp never overflows. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const logpFields = ["policyChosen", "policyRejected", "refChosen", "refRejected"] as const;

/** Checks lengths and values of a batch; returns n. Errors name the field and the index. */
function checkPairLogps(batch: PairLogps, needLabels: boolean, needJudgeProbs = false): number {
  const n = batch.policyChosen.length;
  if (n === 0) throw new RangeError("dpo: empty batch (policyChosen has no entries)");
  const sameLength = (name: keyof PairLogps, a: ArrayLike<number>): void => {
    if (a.length !== n) throw new RangeError(`dpo: ${name} has ${a.length} entries, policyChosen has ${n}`);
  };
  for (const name of logpFields) {
    const a = batch[name];
    sameLength(name, a);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(a[i])) throw new RangeError(`dpo: ${name}[${i}] must be finite (got ${a[i]})`);
    }
  }
  for (const name of ["chosenTokens", "rejectedTokens"] as const) {
    const a = batch[name];
    sameLength(name, a);
    for (let i = 0; i < n; i++) {
      if (!(a[i] >= 1 && Number.isFinite(a[i]))) throw new RangeError(`dpo: ${name}[${i}] must be a finite number ≥ 1 (got ${a[i]})`);
    }
  }
  const { weights, labels } = batch;
  if (weights) {
    sameLength("weights", weights);
    for (let i = 0; i < n; i++) {
      if (!(weights[i] >= 0 && Number.isFinite(weights[i]))) {
        throw new RangeError(`dpo: weights[${i}] must be a finite number ≥ 0 (got ${weights[i]})`);
      }
    }
  }
  if (needLabels) {
    if (!labels) throw new RangeError('dpo: labels (soft labels C ∈ [0, 1]) are required for lossType "soft_label"');
    sameLength("labels", labels);
    for (let i = 0; i < n; i++) {
      if (!(labels[i] >= 0 && labels[i] <= 1)) throw new RangeError(`dpo: labels[${i}] must be in [0, 1] (got ${labels[i]})`);
    }
  }
  if (needJudgeProbs) {
    const q = batch.judgeProbs;
    if (!q) throw new RangeError("dpo: judgeProbs (the judge's preference probabilities) are required for the consistency penalty");
    sameLength("judgeProbs", q);
    for (let i = 0; i < n; i++) {
      if (!(q[i] > 0 && q[i] < 1)) throw new RangeError(`dpo: judgeProbs[${i}] must be in (0, 1) (got ${q[i]})`);
    }
  }
  return n;
}
