// The DPO loss family (src/train/losses.ts): closed-form values, finite-difference gradients, identities
// between the losses, saturation at large β, micro-batch decomposition, TRL metric names, validation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../../src/engine/tensor.js";
import {
  checkDpoLossConfig,
  type DpoLossConfig,
  type DpoLossType,
  defaultDpoLoss,
  dpoLoss,
  type PairLogps,
} from "../../src/train/losses.js";

const lossTypes: DpoLossType[] = ["sigmoid", "ipo", "hinge", "robust", "soft_label"];

/** A batch with plain (mutable) arrays, so finite differences can perturb entries in place. */
interface Batch {
  policyChosen: number[];
  policyRejected: number[];
  refChosen: number[];
  refRejected: number[];
  chosenTokens: number[];
  rejectedTokens: number[];
  weights?: number[];
  labels?: number[];
}

/** One pair, response lengths 1 unless given. */
function pair(pc: number, pr: number, rc: number, rr: number, lc = 1, lr = 1): Batch {
  return { policyChosen: [pc], policyRejected: [pr], refChosen: [rc], refRejected: [rr], chosenTokens: [lc], rejectedTokens: [lr] };
}

/** Pairs with the given Δ (unnormalised, lengths 1): policy margin Δ, reference margin 0. */
function withDeltas(deltas: number[]): Batch {
  const n = deltas.length;
  return {
    policyChosen: deltas.map((d) => -100 + d / 2),
    policyRejected: deltas.map((d) => -100 - d / 2),
    refChosen: new Array(n).fill(-100),
    refRejected: new Array(n).fill(-100),
    chosenTokens: new Array(n).fill(1),
    rejectedTokens: new Array(n).fill(1),
  };
}

function cfgOf(over: Partial<DpoLossConfig>): DpoLossConfig {
  return { ...defaultDpoLoss, ...over };
}

/** The same pairs with chosen and rejected exchanged. */
function swapped(b: Batch): Batch {
  return {
    ...b,
    policyChosen: b.policyRejected,
    policyRejected: b.policyChosen,
    refChosen: b.refRejected,
    refRejected: b.refChosen,
    chosenTokens: b.rejectedTokens,
    rejectedTokens: b.chosenTokens,
  };
}

function slice(b: Batch, from: number, to: number): Batch {
  const out: Batch = {
    policyChosen: b.policyChosen.slice(from, to),
    policyRejected: b.policyRejected.slice(from, to),
    refChosen: b.refChosen.slice(from, to),
    refRejected: b.refRejected.slice(from, to),
    chosenTokens: b.chosenTokens.slice(from, to),
    rejectedTokens: b.rejectedTokens.slice(from, to),
  };
  if (b.weights) out.weights = b.weights.slice(from, to);
  if (b.labels) out.labels = b.labels.slice(from, to);
  return out;
}

/** A random batch: integer lengths 1..20, per-token log-probs in [−2.5, −0.5], reference near the policy. */
function randomBatch(rng: () => number, n: number): Batch {
  const b: Batch = {
    policyChosen: [],
    policyRejected: [],
    refChosen: [],
    refRejected: [],
    chosenTokens: [],
    rejectedTokens: [],
    weights: [],
    labels: [],
  };
  for (let i = 0; i < n; i++) {
    const lc = 1 + Math.floor(rng() * 20);
    const lr = 1 + Math.floor(rng() * 20);
    const pc = -lc * (0.5 + 2 * rng());
    const pr = -lr * (0.5 + 2 * rng());
    b.chosenTokens.push(lc);
    b.rejectedTokens.push(lr);
    b.policyChosen.push(pc);
    b.policyRejected.push(pr);
    b.refChosen.push(pc + 4 * (rng() - 0.5));
    b.refRejected.push(pr + 4 * (rng() - 0.5));
    b.weights?.push(2 * rng());
    b.labels?.push(rng());
  }
  return b;
}

function near(a: number, b: number, what: string, rtol = 1e-12, atol = 1e-12): void {
  const tol = atol + rtol * Math.max(Math.abs(a), Math.abs(b));
  assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b} (tol ${tol.toExponential(2)})`);
}

function allNear(a: ArrayLike<number>, b: ArrayLike<number>, what: string, rtol = 1e-12, atol = 1e-12): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) near(a[i], b[i], `${what}[${i}]`, rtol, atol);
}

const softplus = (x: number): number => Math.log(1 + Math.exp(x));
const sigma = (x: number): number => 1 / (1 + Math.exp(-x));

/** Central difference of f w.r.t. a[i]; divides by the step actually taken (inputs are rounded). */
function centralDiff(a: number[], i: number, f: () => number, h = 1e-5): number {
  const old = a[i];
  const up = old + h;
  const down = old - h;
  a[i] = up;
  const fp = f();
  a[i] = down;
  const fm = f();
  a[i] = old;
  return (fp - fm) / (up - down);
}

/** Compare dPolicyChosen / dPolicyRejected with central differences of dpoLoss(...).loss. */
function checkGrad(b: Batch, cfg: DpoLossConfig, what: string, denominator?: number): void {
  const r = dpoLoss(b, cfg, denominator);
  let scale = 0;
  for (const l of r.losses) scale += Math.abs(l);
  // Rounding of the loss (≈ 1e-16·scale) over a step of 1e-5 gives ≈ 1e-11·scale; leave a wide margin.
  const atol = 1e-8 * Math.max(1, scale);
  const f = () => dpoLoss(b, cfg, denominator).loss;
  for (let i = 0; i < b.policyChosen.length; i++) {
    near(r.dPolicyChosen[i], centralDiff(b.policyChosen, i, f), `${what}: dPolicyChosen[${i}] vs finite difference`, 1e-6, atol);
    near(r.dPolicyRejected[i], centralDiff(b.policyRejected, i, f), `${what}: dPolicyRejected[${i}] vs finite difference`, 1e-6, atol);
  }
}

test("defaults are TRL's / the DPO paper's", () => {
  assert.deepEqual(
    defaultDpoLoss,
    { beta: 0.1, lossType: "sigmoid", labelSmoothing: 0, rpoAlpha: null, lengthNormalize: false },
    "defaultDpoLoss",
  );
  assert.doesNotThrow(() => checkDpoLossConfig(defaultDpoLoss), "the defaults validate");
});

test("sigmoid: closed-form values and gradients, with and without label smoothing", () => {
  // Δ = 0: −log σ(0) = log 2 for every pair, whatever β.
  const zero = dpoLoss(withDeltas([0, 0]), cfgOf({ beta: 0.7 }));
  near(zero.loss, Math.LN2, "loss at Δ = 0");
  allNear(zero.losses, [Math.LN2, Math.LN2], "per-pair losses at Δ = 0");

  // β = 0.5, Δ = (−10 + 12) − (−11 + 11) = 2, x = 1: ℓ = log(1 + e^−1), dℓ/dπc = −β·σ(−1) = −dℓ/dπr.
  const b = pair(-10, -12, -11, -11);
  const r = dpoLoss(b, cfgOf({ beta: 0.5 }));
  near(r.loss, Math.log(1 + Math.exp(-1)), "loss at x = 1");
  near(r.dPolicyChosen[0], -0.5 / (1 + Math.E), "dPolicyChosen at x = 1");
  near(r.dPolicyRejected[0], 0.5 / (1 + Math.E), "dPolicyRejected at x = 1");

  // cDPO, ε = 0.2: ℓ = 0.8·log(1 + e^−1) + 0.2·log(1 + e), dℓ/dπc = β·(0.2·σ(1) − 0.8·σ(−1)).
  const s = dpoLoss(b, cfgOf({ beta: 0.5, labelSmoothing: 0.2 }));
  near(s.loss, 0.8 * Math.log(1 + Math.exp(-1)) + 0.2 * Math.log(1 + Math.E), "cDPO loss at x = 1");
  near(s.dPolicyChosen[0], 0.5 * (0.2 * sigma(1) - 0.8 * sigma(-1)), "cDPO dPolicyChosen at x = 1");
  near(s.dPolicyRejected[0], -0.5 * (0.2 * sigma(1) - 0.8 * sigma(-1)), "cDPO dPolicyRejected at x = 1");
});

test("hinge: closed-form values and gradients on both sides of the margin", () => {
  const cfg = cfgOf({ beta: 0.25, lossType: "hinge" });
  // x = 0.25·2 = 0.5 → 0.5, slope −β on chosen.
  const a = dpoLoss(withDeltas([2]), cfg);
  near(a.loss, 0.5, "hinge at x = 0.5");
  near(a.dPolicyChosen[0], -0.25, "hinge dPolicyChosen at x = 0.5");
  near(a.dPolicyRejected[0], 0.25, "hinge dPolicyRejected at x = 0.5");
  // x = 2: past the margin, zero loss and zero gradient.
  const b = dpoLoss(withDeltas([8]), cfg);
  assert.equal(b.loss, 0, "hinge at x = 2 is 0");
  assert.equal(Math.abs(b.dPolicyChosen[0]) + Math.abs(b.dPolicyRejected[0]), 0, "hinge gradient past the margin is 0");
  // x = −1 → 2.
  near(dpoLoss(withDeltas([-4]), cfg).loss, 2, "hinge at x = −1");
});

test("ipo: closed-form values on length-normalised log-probs (always, as TRL)", () => {
  // Δ = 0: (0 − 1/(2β))² = 1/(4β²).
  for (const beta of [0.1, 0.5, 2]) {
    near(dpoLoss(withDeltas([0, 0, 0]), cfgOf({ beta, lossType: "ipo" })).loss, 1 / (4 * beta * beta), `ipo at Δ = 0, β = ${beta}`);
  }
  // Lengths 10 and 5: policy −2 vs −6, reference −1 vs −3, Δ = 4 − 2 = 2; β = 0.5, target 1 → ℓ = 1.
  // dℓ/dΔ = 2, so dℓ/dπc = 2/10 and dℓ/dπr = −2/5 (lengthNormalize false: IPO normalises anyway).
  const b = pair(-20, -30, -10, -15, 10, 5);
  const r = dpoLoss(b, cfgOf({ beta: 0.5, lossType: "ipo" }));
  near(r.loss, 1, "ipo loss at Δ = 2, β = 0.5");
  near(r.dPolicyChosen[0], 0.2, "ipo dPolicyChosen");
  near(r.dPolicyRejected[0], -0.4, "ipo dPolicyRejected");
  near(r.metrics["logps/chosen"], -2, "ipo logps/chosen is the normalised log-prob");
  near(r.metrics["logps/rejected"], -6, "ipo logps/rejected is the normalised log-prob");
  near(r.metrics["rewards/chosen"], -0.5, "ipo rewards/chosen = β·(−2 + 1)");
  near(r.metrics["rewards/rejected"], -1.5, "ipo rewards/rejected = β·(−6 + 3)");
  near(r.metrics["rewards/margins"], 1, "ipo rewards/margins");
  assert.equal(r.metrics["rewards/accuracies"], 1, "ipo rewards/accuracies");
});

test("robust: closed-form value and gradient; ε = 0 equals sigmoid", () => {
  // ε = 0.2, x = 1: ℓ = (0.8·log(1 + e^−1) − 0.2·log(1 + e)) / 0.6.
  const b = pair(-10, -12, -11, -11);
  const r = dpoLoss(b, cfgOf({ beta: 0.5, lossType: "robust", labelSmoothing: 0.2 }));
  near(r.loss, (0.8 * Math.log(1 + Math.exp(-1)) - 0.2 * Math.log(1 + Math.E)) / 0.6, "robust loss at x = 1");
  near(r.dPolicyChosen[0], (-0.5 * (0.8 * sigma(-1) + 0.2 * sigma(1))) / 0.6, "robust dPolicyChosen at x = 1");

  const rb = randomBatch(mulberry32(7), 5);
  const sig = dpoLoss(rb, cfgOf({ beta: 0.3 }));
  const rob = dpoLoss(rb, cfgOf({ beta: 0.3, lossType: "robust" }));
  near(rob.loss, sig.loss, "robust ε = 0 loss equals sigmoid");
  allNear(rob.dPolicyChosen, sig.dPolicyChosen, "robust ε = 0 dPolicyChosen equals sigmoid");
  allNear(rob.dPolicyRejected, sig.dPolicyRejected, "robust ε = 0 dPolicyRejected equals sigmoid");
});

test("soft_label (CREAM): closed form, symmetry at C = 0.5, and its identities with sigmoid", () => {
  // C = 0.7, β = 1, Δ = 1: ℓ = 0.7·log(1 + e^−1) + 0.3·log(1 + e).
  const one = { ...withDeltas([1]), labels: [0.7] };
  near(dpoLoss(one, cfgOf({ beta: 1, lossType: "soft_label" })).loss, 0.7 * softplus(-1) + 0.3 * softplus(1), "soft_label C = 0.7, x = 1");

  const cfg = cfgOf({ beta: 0.4, lossType: "soft_label" });
  // C = 0.5: symmetric in Δ, and no signal at Δ = 0 (zero gradient).
  const plus = dpoLoss({ ...withDeltas([3, 0.5]), labels: [0.5, 0.5] }, cfg);
  const minus = dpoLoss({ ...withDeltas([-3, -0.5]), labels: [0.5, 0.5] }, cfg);
  near(plus.loss, minus.loss, "soft_label C = 0.5 is symmetric in Δ");
  const flat = dpoLoss({ ...withDeltas([0]), labels: [0.5] }, cfg);
  near(flat.loss, Math.LN2, "soft_label C = 0.5 at Δ = 0 is log 2");
  assert.equal(Math.abs(flat.dPolicyChosen[0]), 0, "soft_label C = 0.5 at Δ = 0: zero gradient on chosen");
  assert.equal(Math.abs(flat.dPolicyRejected[0]), 0, "soft_label C = 0.5 at Δ = 0: zero gradient on rejected");

  const rb = randomBatch(mulberry32(11), 6);
  const sig = dpoLoss(rb, cfgOf({ beta: 0.4 }));
  // C = 1 is plain DPO.
  const c1 = dpoLoss({ ...rb, labels: new Array(6).fill(1) }, cfg);
  near(c1.loss, sig.loss, "soft_label C = 1 loss equals sigmoid");
  allNear(c1.dPolicyChosen, sig.dPolicyChosen, "soft_label C = 1 dPolicyChosen equals sigmoid");
  allNear(c1.dPolicyRejected, sig.dPolicyRejected, "soft_label C = 1 dPolicyRejected equals sigmoid");
  // C = 0 is DPO with chosen and rejected exchanged.
  const c0 = dpoLoss({ ...rb, labels: new Array(6).fill(0) }, cfg);
  const sw = dpoLoss(swapped(rb), cfgOf({ beta: 0.4 }));
  near(c0.loss, sw.loss, "soft_label C = 0 loss equals sigmoid on swapped pairs");
  allNear(c0.dPolicyChosen, sw.dPolicyRejected, "soft_label C = 0 dPolicyChosen equals swapped sigmoid's dPolicyRejected");
  allNear(c0.dPolicyRejected, sw.dPolicyChosen, "soft_label C = 0 dPolicyRejected equals swapped sigmoid's dPolicyChosen");
  // cDPO with ε is soft_label with C = 1 − ε.
  const cdpo = dpoLoss(rb, cfgOf({ beta: 0.4, labelSmoothing: 0.15 }));
  const soft = dpoLoss({ ...rb, labels: new Array(6).fill(0.85) }, cfg);
  near(cdpo.loss, soft.loss, "sigmoid ε = 0.15 loss equals soft_label C = 0.85");
  allNear(cdpo.dPolicyChosen, soft.dPolicyChosen, "sigmoid ε = 0.15 dPolicyChosen equals soft_label C = 0.85");
  allNear(cdpo.dPolicyRejected, soft.dPolicyRejected, "sigmoid ε = 0.15 dPolicyRejected equals soft_label C = 0.85");

  assert.throws(
    () => dpoLoss({ ...rb, labels: undefined }, cfg),
    { name: "RangeError", message: /labels/ },
    "soft_label without labels throws",
  );
  assert.throws(
    () => dpoLoss({ ...withDeltas([1, 1]), labels: [0.5, 1.5] }, cfg),
    { name: "RangeError", message: /labels\[1\]/ },
    "soft_label with a label above 1 names the entry",
  );
  assert.doesNotThrow(() => dpoLoss(rb, cfgOf({ beta: 0.4 })), "labels are not needed by the other losses");
});

test("RPO term: value, nll_loss metric, gradient", () => {
  // β = 0.5, x = 1, chosen −10 over 5 tokens: ℓ = log(1 + e^−1) + 2·(10/5), dℓ/dπc = −β·σ(−1) − 2/5.
  const b = pair(-10, -12, -11, -11, 5, 3);
  const cfg = cfgOf({ beta: 0.5, rpoAlpha: 2 });
  const r = dpoLoss(b, cfg);
  near(r.loss, softplus(-1) + 4, "sigmoid + RPO loss");
  near(r.losses[0], softplus(-1) + 4, "per-pair loss includes the RPO term");
  near(r.dPolicyChosen[0], -0.5 * sigma(-1) - 0.4, "sigmoid + RPO dPolicyChosen");
  near(r.dPolicyRejected[0], 0.5 * sigma(-1), "RPO does not touch the rejected gradient");
  assert.ok(r.metrics.nll_loss !== undefined, "nll_loss is reported when RPO is on");
  near(r.metrics.nll_loss ?? Number.NaN, 2, "nll_loss is the mean per-token NLL of chosen");
  assert.equal(dpoLoss(b, cfgOf({ beta: 0.5, rpoAlpha: 0 })).metrics.nll_loss, undefined, "rpoAlpha 0 is off");
  checkGrad(b, cfg, "sigmoid + RPO");
});

test("lengthNormalize divides every log-prob by its length; gradient is w.r.t. the summed log-prob", () => {
  // Same numbers as the IPO case: Δ = 2 after normalisation; β = 0.5 → x = 1.
  const b = pair(-20, -30, -10, -15, 10, 5);
  const r = dpoLoss(b, cfgOf({ beta: 0.5, lengthNormalize: true }));
  near(r.loss, softplus(-1), "normalised sigmoid loss");
  near(r.dPolicyChosen[0], (-0.5 * sigma(-1)) / 10, "normalised dPolicyChosen carries 1/length");
  near(r.dPolicyRejected[0], (0.5 * sigma(-1)) / 5, "normalised dPolicyRejected carries 1/length");
  near(r.metrics["logps/chosen"], -2, "logps/chosen is normalised");
  // Without normalisation: Δ = (−20 + 30) − (−10 + 15) = 5.
  near(dpoLoss(b, cfgOf({ beta: 0.5 })).loss, softplus(-2.5), "unnormalised sigmoid loss");
});

test("weights and denominator: loss = Σ w·ℓ / denominator", () => {
  const b = { ...withDeltas([0, 0, 0]), weights: [1, 2, 0] };
  const r = dpoLoss(b, cfgOf({ beta: 0.2 }), 4);
  near(r.loss, (3 * Math.LN2) / 4, "weighted loss over denominator 4");
  allNear(r.losses, [Math.LN2, Math.LN2, Math.LN2], "per-pair losses are before weights");
  allNear(r.dPolicyChosen, [-0.1 / 4, -0.2 / 4, 0], "weighted dPolicyChosen");
  allNear(r.dPolicyRejected, [0.1 / 4, 0.2 / 4, 0], "weighted dPolicyRejected");
  near(r.metrics["rewards/chosen"], 0, "metrics are unweighted means");
});

test("gradients match finite differences for every loss and option", () => {
  const base = randomBatch(mulberry32(3), 4);
  for (const lossType of lossTypes) {
    for (const lengthNormalize of [false, true]) {
      for (const rpoAlpha of [null, 0.7]) {
        for (const weighted of [false, true]) {
          for (const denominator of [undefined, 9]) {
            const b: Batch = { ...base, policyChosen: [...base.policyChosen], policyRejected: [...base.policyRejected] };
            if (!weighted) delete b.weights;
            const labelSmoothing = lossType === "sigmoid" || lossType === "robust" ? 0.1 : 0;
            const cfg = cfgOf({ beta: 0.3, lossType, lengthNormalize, rpoAlpha, labelSmoothing });
            checkGrad(b, cfg, `${lossType} norm=${lengthNormalize} rpo=${rpoAlpha} weights=${weighted} denom=${denominator}`, denominator);
          }
        }
      }
    }
  }
});

test("large β (1e3, Δ = ±50): finite, correctly saturated losses and gradients", () => {
  const beta = 1e3;
  const b = withDeltas([50, -50]);
  const x = 5e4;
  const cases: { lossType: DpoLossType; eps?: number; losses: number[]; dChosen: number[] }[] = [
    // n = 2, so each gradient carries 1/2.
    { lossType: "sigmoid", losses: [0, x], dChosen: [0, -beta / 2] },
    { lossType: "hinge", losses: [0, 1 + x], dChosen: [0, -beta / 2] },
    { lossType: "ipo", losses: [(50 - 5e-4) ** 2, (-50 - 5e-4) ** 2], dChosen: [50 - 5e-4, -50 - 5e-4] },
    {
      lossType: "robust",
      eps: 0.1,
      losses: [(-0.1 * x) / 0.8, (0.9 * x) / 0.8],
      dChosen: [(-beta * 0.1) / 0.8 / 2, (-beta * 0.9) / 0.8 / 2],
    },
    { lossType: "soft_label", losses: [0.3 * x, 0.7 * x], dChosen: [(beta * 0.3) / 2, (-beta * 0.7) / 2] },
  ];
  for (const c of cases) {
    const r = dpoLoss({ ...b, labels: [0.7, 0.7] }, cfgOf({ beta, lossType: c.lossType, labelSmoothing: c.eps ?? 0 }));
    assert.ok(Number.isFinite(r.loss), `${c.lossType}: loss is finite at β = 1e3`);
    for (let i = 0; i < 2; i++) {
      assert.ok(Number.isFinite(r.dPolicyChosen[i]), `${c.lossType}: dPolicyChosen[${i}] is finite`);
      assert.ok(Number.isFinite(r.dPolicyRejected[i]), `${c.lossType}: dPolicyRejected[${i}] is finite`);
      near(r.dPolicyRejected[i], -r.dPolicyChosen[i], `${c.lossType}: lengths 1, so dPolicyRejected[${i}] = −dPolicyChosen[${i}]`);
    }
    allNear(r.losses, c.losses, `${c.lossType}: saturated per-pair losses`);
    allNear(r.dPolicyChosen, c.dChosen, `${c.lossType}: saturated dPolicyChosen`);
    near(r.loss, (c.losses[0] + c.losses[1]) / 2, `${c.lossType}: loss is the mean`);
  }
});

test("identical chosen and rejected (Δ = 0): gradient ∓β/2, zero margin, zero accuracy", () => {
  const r = dpoLoss(pair(-7, -7, -9, -9), cfgOf({ beta: 0.3 }));
  near(r.loss, Math.LN2, "loss is log 2");
  near(r.dPolicyChosen[0], -0.15, "dPolicyChosen = −β/2");
  near(r.dPolicyRejected[0], 0.15, "dPolicyRejected = +β/2");
  near(r.metrics["rewards/chosen"], 0.6, "rewards/chosen = β·(−7 + 9)");
  near(r.metrics["rewards/rejected"], 0.6, "rewards/rejected = β·(−7 + 9)");
  assert.equal(r.metrics["rewards/margins"], 0, "margins are 0");
  assert.equal(r.metrics["rewards/accuracies"], 0, "accuracy counts a strict win only");
});

test("denominator: half-batches with denominator n add up to the full batch", () => {
  const rb = randomBatch(mulberry32(5), 6);
  for (const lossType of lossTypes) {
    const cfg = cfgOf({ beta: 0.25, lossType, rpoAlpha: 0.5, labelSmoothing: lossType === "robust" ? 0.2 : 0 });
    const full = dpoLoss(rb, cfg);
    const a = dpoLoss(slice(rb, 0, 3), cfg, 6);
    const b = dpoLoss(slice(rb, 3, 6), cfg, 6);
    near(a.loss + b.loss, full.loss, `${lossType}: half-batch losses add up`);
    allNear([...a.dPolicyChosen, ...b.dPolicyChosen], full.dPolicyChosen, `${lossType}: concatenated dPolicyChosen`);
    allNear([...a.dPolicyRejected, ...b.dPolicyRejected], full.dPolicyRejected, `${lossType}: concatenated dPolicyRejected`);
    allNear([...a.losses, ...b.losses], full.losses, `${lossType}: concatenated per-pair losses`);
  }
});

test("metrics: exactly TRL's names and means over the pairs", () => {
  const trl = ["logps/chosen", "logps/rejected", "loss", "rewards/accuracies", "rewards/chosen", "rewards/margins", "rewards/rejected"];
  const b = { ...pair(-4, -6, -5, -5), weights: [3] };
  const two: Batch = {
    policyChosen: [-4, -9],
    policyRejected: [-6, -8],
    refChosen: [-5, -9],
    refRejected: [-5, -8],
    chosenTokens: [1, 1],
    rejectedTokens: [1, 1],
  };
  assert.deepEqual(Object.keys(dpoLoss(b, defaultDpoLoss).metrics).sort(), trl, "metric names without RPO");
  assert.deepEqual(
    Object.keys(dpoLoss(b, cfgOf({ rpoAlpha: 1 })).metrics).sort(),
    [...trl, "nll_loss"].sort(),
    "metric names with RPO add nll_loss",
  );
  // β = 1: pair 0 rewards 1 and −1; pair 1 rewards 0 and 0 (a tie is not a win).
  const m = dpoLoss(two, cfgOf({ beta: 1 })).metrics;
  near(m["rewards/chosen"], 0.5, "rewards/chosen mean");
  near(m["rewards/rejected"], -0.5, "rewards/rejected mean");
  near(m["rewards/margins"], 1, "rewards/margins mean");
  near(m["rewards/accuracies"], 0.5, "rewards/accuracies mean");
  near(m["logps/chosen"], -6.5, "logps/chosen mean");
  near(m["logps/rejected"], -7, "logps/rejected mean");
  near(m.loss, (softplus(-2) + Math.LN2) / 2, "metrics.loss is the loss");
});

test("validation errors name the field (and the index)", () => {
  const ok = pair(-1, -2, -1, -2);
  const bad = (over: Partial<DpoLossConfig>) => () => checkDpoLossConfig(cfgOf(over));
  assert.throws(bad({ beta: -1 }), { name: "RangeError", message: "dpo.beta must be > 0 (got -1)" }, "negative β");
  assert.throws(bad({ beta: Number.NaN }), { name: "RangeError", message: /dpo\.beta/ }, "NaN β");
  assert.throws(bad({ beta: Number.POSITIVE_INFINITY }), { name: "RangeError", message: /dpo\.beta/ }, "infinite β");
  assert.throws(bad({ lossType: "kto" as DpoLossType }), { name: "RangeError", message: /dpo\.lossType/ }, "unknown loss type");
  assert.throws(bad({ labelSmoothing: 0.5 }), { name: "RangeError", message: /dpo\.labelSmoothing/ }, "ε = 0.5");
  assert.throws(bad({ labelSmoothing: -0.1 }), { name: "RangeError", message: /dpo\.labelSmoothing/ }, "negative ε");
  assert.throws(bad({ rpoAlpha: -1 }), { name: "RangeError", message: /dpo\.rpoAlpha/ }, "negative rpoAlpha");
  assert.throws(
    bad({ lengthNormalize: "yes" as unknown as boolean }),
    { name: "RangeError", message: /dpo\.lengthNormalize/ },
    "non-boolean",
  );
  assert.throws(() => dpoLoss(ok, cfgOf({ beta: 0 })), { name: "RangeError", message: /dpo\.beta/ }, "dpoLoss validates its config");

  const cfg = defaultDpoLoss;
  const two = withDeltas([1, 2]);
  const cases: [string, PairLogps, RegExp][] = [
    ["length mismatch", { ...two, policyRejected: [-1] }, /policyRejected has 1 entries, policyChosen has 2/],
    ["NaN log-prob", { ...two, refRejected: [-1, Number.NaN] }, /refRejected\[1\]/],
    ["infinite log-prob", { ...two, policyChosen: [Number.NEGATIVE_INFINITY, -1] }, /policyChosen\[0\]/],
    ["zero-length response", { ...two, chosenTokens: [0, 1] }, /chosenTokens\[0\]/],
    ["negative weight", { ...two, weights: [1, -1] }, /weights\[1\]/],
    ["weights length", { ...two, weights: [1] }, /weights has 1 entries/],
    ["empty batch", withDeltas([]), /empty batch/],
  ];
  for (const [what, batch, message] of cases) assert.throws(() => dpoLoss(batch, cfg), { name: "RangeError", message }, what);
  assert.throws(() => dpoLoss(two, cfg, 0), { name: "RangeError", message: /denominator/ }, "zero denominator");
});

test("property: random batches, all losses and options, gradients match finite differences", () => {
  const rng = mulberry32(20240601);
  let checked = 0;
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + Math.floor(rng() * 5);
    const b = randomBatch(rng, n);
    if (rng() < 0.5) delete b.weights;
    const lossType = lossTypes[trial % lossTypes.length];
    const cfg = cfgOf({
      beta: 0.02 + 1.5 * rng(),
      lossType,
      labelSmoothing: rng() < 0.5 ? 0 : 0.45 * rng(),
      rpoAlpha: rng() < 0.5 ? null : 2 * rng(),
      lengthNormalize: rng() < 0.5,
    });
    const denominator = rng() < 0.5 ? undefined : n + 3 * rng();
    if (lossType === "hinge") {
      // A finite difference across the kink at x = 1 is meaningless; such a draw is skipped.
      const norm = cfg.lengthNormalize;
      let nearKink = false;
      for (let i = 0; i < n; i++) {
        const sc = norm ? 1 / b.chosenTokens[i] : 1;
        const sr = norm ? 1 / b.rejectedTokens[i] : 1;
        const delta = (b.policyChosen[i] - b.refChosen[i]) * sc - (b.policyRejected[i] - b.refRejected[i]) * sr;
        if (Math.abs(1 - cfg.beta * delta) < 1e-3) nearKink = true;
      }
      if (nearKink) continue;
    }
    checkGrad(b, cfg, `trial ${trial} (${JSON.stringify(cfg)}, denom ${denominator})`, denominator);
    checked++;
  }
  assert.ok(checked >= 35, `most random trials are checked (${checked} of 40)`);
});
