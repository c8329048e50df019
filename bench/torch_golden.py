#!/usr/bin/python3
"""Golden values for the TypeScript engine's tests: test/fixtures/golden-llama.json.

Two tiny Llama models in float64 with deterministic weights (a seeded torch.Generator):
  A: vocab 13, dim 16, 2 layers, 4 heads / 2 kv heads (GQA), hidden 24, untied, no bias.
  B: vocab 13, dim 8, 1 layer, 2 heads / 1 kv head, hidden 12, tied embeddings, q/k/v bias (Qwen2 style).
Both: rope theta 10000, eps 1e-5, maxSeqLen 16. Matrices ~ N(0, 0.3^2) (so attention is far from
uniform), biases ~ N(0, 0.1^2), norm weights 1 + 0.1 N(0, 1).

Input: 2 right-padded sequences of length T = 5 with lengths [5, 3]. tokens[b][t] is the input,
targets[b][t] the next token; padded positions have token PAD_TOKEN and target IGNORE (-100).
Recorded per model: the logits (B, T, V) at every position (padded ones included: causal attention
means the valid positions do not see the padding), logprobs[b, t] = log_softmax(logits[b, t])[targets[b][t]]
(0 at padded positions), weights w[b, t] = sin(1 + b*T + t) (0 at padded positions), the objective
L = sum_{b,t} w[b,t] * logprobs[b,t] and dL/dparam for every parameter, under the HF names.

The model is bench/torch_llama.py's LlamaForCausalLM; this script checks it against an independent
loop-by-loop reference (explicit per-head GQA indexing and pairwise RoPE rotation) and checks a few
gradient entries by central differences before writing anything.

Run: /usr/bin/python3 bench/torch_golden.py [--out test/fixtures/golden-llama.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import LlamaConfig, LlamaForCausalLM  # noqa: E402

torch.set_default_dtype(torch.float64)

PAD_TOKEN = 0
IGNORE = -100
SIG_DIGITS = 10

# Six ids per sequence: tokens = ids[:5], targets = ids[1:6]; the second sequence has length 3.
SEQS = [[1, 5, 9, 2, 11, 7], [3, 12, 0, 6]]
T = 5


def make_inputs():
    tokens, targets, lengths = [], [], []
    for ids in SEQS:
        n = len(ids) - 1
        lengths.append(n)
        tokens.append(ids[:n] + [PAD_TOKEN] * (T - n))
        targets.append(ids[1 : n + 1] + [IGNORE] * (T - n))
    return tokens, targets, lengths


def init_weights(model: LlamaForCausalLM, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_hf_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.3 * noise)


def weights_for(lengths) -> torch.Tensor:
    w = torch.zeros(len(lengths), T)
    for b, n in enumerate(lengths):
        for t in range(n):
            w[b, t] = math.sin(1 + b * T + t)
    return w


def objective(logits: torch.Tensor, targets: torch.Tensor, w: torch.Tensor):
    logp_all = torch.log_softmax(logits, dim=-1)
    valid = targets != IGNORE
    picked = torch.gather(logp_all, -1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logp = torch.where(valid, picked, torch.zeros_like(picked))
    return (w * logp).sum(), logp


# ---------------------------------------------------------------------------------------------
# Independent reference: one sequence, one position, one head at a time; dict of HF-named tensors.
# ---------------------------------------------------------------------------------------------


def reference_logits(cfg: LlamaConfig, P: dict, ids: list[int]) -> torch.Tensor:
    hd, H, KV = cfg.headDim, cfg.nHeads, cfg.nKvHeads
    half = hd // 2

    def rms(x, wt):
        return wt * x / torch.sqrt((x * x).mean() + cfg.normEps)

    def lin(x, name):
        y = P[name + ".weight"] @ x
        if name + ".bias" in P:
            y = y + P[name + ".bias"]
        return y

    def rope(v, pos):  # v (hd,), pairs (i, i + hd/2) rotated by pos * theta^(-2i/hd)
        out = torch.empty_like(v)
        for i in range(half):
            ang = pos * cfg.ropeTheta ** (-2.0 * i / hd)
            c, s = math.cos(ang), math.sin(ang)
            out[i] = v[i] * c - v[i + half] * s
            out[i + half] = v[i + half] * c + v[i] * s
        return out

    xs = [P["model.embed_tokens.weight"][tok] for tok in ids]
    for li in range(cfg.nLayers):
        pre = f"model.layers.{li}."
        hs = [rms(x, P[pre + "input_layernorm.weight"]) for x in xs]
        qs = [lin(h, pre + "self_attn.q_proj") for h in hs]
        ks = [lin(h, pre + "self_attn.k_proj") for h in hs]
        vs = [lin(h, pre + "self_attn.v_proj") for h in hs]
        new_xs = []
        for t in range(len(xs)):
            heads = []
            for h in range(H):
                j = h // (H // KV)  # kv head serving query head h
                q = rope(qs[t][h * hd : (h + 1) * hd], t)
                scores = torch.stack([q @ rope(ks[s][j * hd : (j + 1) * hd], s) / math.sqrt(hd) for s in range(t + 1)])
                a = torch.softmax(scores, dim=0)
                heads.append(sum(a[s] * vs[s][j * hd : (j + 1) * hd] for s in range(t + 1)))
            x = xs[t] + lin(torch.cat(heads), pre + "self_attn.o_proj")
            h2 = rms(x, P[pre + "post_attention_layernorm.weight"])
            gate = lin(h2, pre + "mlp.gate_proj")
            up = lin(h2, pre + "mlp.up_proj")
            new_xs.append(x + lin(gate * torch.sigmoid(gate) * up, pre + "mlp.down_proj"))
        xs = new_xs
    head = P["model.embed_tokens.weight"] if cfg.tieEmbeddings else P["lm_head.weight"]
    return torch.stack([head @ rms(x, P["model.norm.weight"]) for x in xs])


def reference_objective(cfg, P, tokens, targets, lengths, w) -> float:
    total = 0.0
    for b, n in enumerate(lengths):
        lg = reference_logits(cfg, P, tokens[b][:n])
        lp = torch.log_softmax(lg, dim=-1)
        total += sum(float(w[b, t]) * float(lp[t, targets[b][t]]) for t in range(n))
    return total


# ---------------------------------------------------------------------------------------------


def rounded(t: torch.Tensor) -> list[float]:
    return [float(f"{v:.{SIG_DIGITS}g}") for v in t.detach().reshape(-1).tolist()]


def build_case(name: str, cfg: LlamaConfig, seed: int, note: str) -> dict:
    model = LlamaForCausalLM(cfg, dtype=torch.float64)
    init_weights(model, seed)
    tokens, targets, lengths = make_inputs()
    tok_t = torch.tensor(tokens)
    tgt_t = torch.tensor(targets)
    w = weights_for(lengths)

    logits = model(tok_t)
    L, logp = objective(logits, tgt_t, w)
    params = model.named_hf_parameters()
    grads = torch.autograd.grad(L, [p for _, p in params])

    # --- checks against the independent reference ---
    P = {n: p.detach().clone() for n, p in params}
    for b, n in enumerate(lengths):
        ref = reference_logits(cfg, P, tokens[b][:n])
        err = (ref - logits[b, :n].detach()).abs().max().item()
        assert err < 1e-10, f"{name}: logits differ from the reference by {err:g} (sequence {b})"
    ref_L = reference_objective(cfg, P, tokens, targets, lengths, w)
    assert abs(ref_L - L.item()) < 1e-10, f"{name}: objective {L.item()} vs reference {ref_L}"
    g = torch.Generator().manual_seed(1234)
    eps = 1e-6
    checked = 0
    for (pname, p), gr in zip(params, grads):
        for _ in range(2):
            i = int(torch.randint(p.numel(), (1,), generator=g))
            Pp = {k: v.clone() for k, v in P.items()}
            Pm = {k: v.clone() for k, v in P.items()}
            Pp[pname].view(-1)[i] += eps
            Pm[pname].view(-1)[i] -= eps
            fd = (reference_objective(cfg, Pp, tokens, targets, lengths, w)
                  - reference_objective(cfg, Pm, tokens, targets, lengths, w)) / (2 * eps)
            an = gr.reshape(-1)[i].item()
            assert abs(fd - an) < 1e-6 * max(1.0, abs(an)), f"{name}: d L/d {pname}[{i}] autograd {an} vs fd {fd}"
            checked += 1
    print(f"model {name}: {sum(p.numel() for _, p in params)} params, L = {L.item():.10g}; logits match the loop "
          f"reference; {checked} gradient entries match central differences", file=sys.stderr)

    B, V = len(tokens), cfg.vocabSize
    valid = tgt_t != IGNORE
    config = asdict(cfg)
    config["headDim"] = cfg.headDim
    return {
        "name": name,
        "note": note,
        "seed": seed,
        "config": config,
        "paramCount": sum(p.numel() for _, p in params),
        "shapes": {n: list(p.shape) for n, p in params},
        "params": {n: rounded(p) for n, p in params},
        "batch": B,
        "seqLen": T,
        "tokens": tokens,
        "targets": targets,
        "lengths": lengths,
        "logitsShape": [B, T, V],
        "logits": rounded(logits),
        "logprobs": rounded(logp),
        "weights": rounded(w),
        "objective": float(f"{L.item():.{SIG_DIGITS + 2}g}"),
        "meanNll": float(f"{(-(logp.sum()) / valid.sum()).item():.{SIG_DIGITS + 2}g}"),
        "grads": {n: rounded(gr) for (n, _), gr in zip(params, grads)},
    }


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="write the golden Llama values for the TS tests")
    ap.add_argument("--out", default=os.path.join(here, "..", "test", "fixtures", "golden-llama.json"))
    args = ap.parse_args(argv)

    base = dict(vocabSize=13, ropeTheta=10000.0, normEps=1e-5, maxSeqLen=16)
    cases = [
        build_case("A", LlamaConfig(dim=16, nLayers=2, nHeads=4, nKvHeads=2, hiddenDim=24, tieEmbeddings=False,
                                    qkvBias=False, **base), seed=1,
                   note="GQA (4 query heads share 2 kv heads), untied lm_head, no bias"),
        build_case("B", LlamaConfig(dim=8, nLayers=1, nHeads=2, nKvHeads=1, hiddenDim=12, tieEmbeddings=True,
                                    qkvBias=True, **base), seed=2,
                   note="tied embeddings (lm_head = embed_tokens; its gradient is the sum of both uses), "
                        "q/k/v bias (Qwen2 style), 2 query heads share 1 kv head"),
    ]
    doc = {
        "description": "Golden values for srlm's Llama engine, computed in float64 by bench/torch_golden.py "
                       "(eager PyTorch, Hugging Face Llama/Qwen2 semantics). Flat lists are row-major (C order). "
                       "params/grads are keyed by HF tensor name, shapes give their shapes (Linear weights are (out, in)). "
                       "logits: (B, T, V) at every position; logprobs, weights: (B, T); padded positions have "
                       f"token {PAD_TOKEN}, target {IGNORE}, logprob 0 and weight 0. "
                       "objective L = sum w*logprobs; grads = dL/dparam. Numbers carry 10 significant digits.",
        "torch": torch.__version__,
        "dtype": "float64",
        "padToken": PAD_TOKEN,
        "ignoreTarget": IGNORE,
        "weightsFormula": "w[b,t] = sin(1 + b*T + t) at valid positions, 0 at padded ones",
        "models": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"))
    with open(args.out, "w") as f:
        f.write(text + "\n")
    # The repo's `biome check` covers test/**, so lay the file out the way biome formats JSON.
    biome = os.path.join(here, "..", "node_modules", ".bin", "biome")
    if os.path.exists(biome):
        subprocess.run([biome, "format", "--write", os.path.abspath(args.out)], check=True, capture_output=True)
    else:
        print("note: node_modules/.bin/biome not found; run `npx biome format --write` on the file", file=sys.stderr)
    print(f"wrote {os.path.relpath(args.out)} ({os.path.getsize(args.out)/1024:.1f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
