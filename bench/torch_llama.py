#!/usr/bin/python3
"""Baseline: a plain eager PyTorch Llama (Hugging Face layout and semantics) on the CPU.

Measures, on --threads CPU threads (2 by default):
  (a) torch's own 1024x1024x1024 float32 matmul GFLOP/s,
  (b) training tokens/s: forward + backward + AdamW step, next-token cross-entropy,
  (c) forward-only tokens/s (full sequences, under torch.no_grad()),
  (d) batched sampling tokens/s with a KV cache (prompt 16 tokens, generate up to --seq,
      temperature 1, multinomial, under torch.no_grad()),
  (e) the share of a training step spent in matmul, from torch.profiler (self time of the
      mm/addmm/bmm kernels) and, independently, from the FLOP count / measured matmul GFLOP/s,
  (f) one DPO optimizer step (--dpo-steps): chosen + rejected rows in one forward, summed
      log-probs of the completion tokens, sigmoid DPO loss against reference log-probs computed
      once under torch.no_grad(), backward, clip_grad_norm_, AdamW; full-parameter and LoRA
      (r 8, alpha 16, frozen base, the seven Linear layers of each block wrapped).

The model mirrors transformers' LlamaForCausalLM / Qwen2ForCausalLM:
  embed_tokens -> per block: RMSNorm -> q/k/v proj (+bias when --qkv-bias) -> rotate-half RoPE
  -> causal GQA (kv heads repeated to query heads), scale 1/sqrt(hd) -> o_proj -> residual;
  RMSNorm -> down(silu(gate(x)) * up(x)) -> residual; final RMSNorm -> lm_head (or tied).
Parameter names are the HF ones (model.layers.0.self_attn.q_proj.weight, ...); bench/torch_golden.py
imports this module to produce the golden values for the TypeScript engine's tests.

Run with Debian's torch: /usr/bin/python3 bench/torch_llama.py --json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass

if __name__ == "__main__":
    # Must happen before torch (libgomp) loads. With GNU OpenMP's default ACTIVE wait policy the
    # torch intra-op threads spin after every parallel region and fight OpenBLAS's own pthreads for the
    # 2 cores; measured here that costs 2-4x in training speed. Set OMP_WAIT_POLICY=ACTIVE to compare.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class LlamaConfig:
    vocabSize: int = 512
    dim: int = 384
    nLayers: int = 6
    nHeads: int = 6
    nKvHeads: int = 2
    hiddenDim: int = 1024
    ropeTheta: float = 10000.0
    normEps: float = 1e-5
    maxSeqLen: int = 128
    tieEmbeddings: bool = False
    qkvBias: bool = False

    @property
    def headDim(self) -> int:
        return self.dim // self.nHeads


class RMSNorm(nn.Module):
    """HF LlamaRMSNorm: weight * x / sqrt(mean(x^2) + eps)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_tables(cfg: LlamaConfig, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (maxSeqLen, hd): angle[p, i] = p * theta^(-2i/hd), duplicated over both halves."""
    hd = cfg.headDim
    inv_freq = 1.0 / (cfg.ropeTheta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    pos = torch.arange(cfg.maxSeqLen, dtype=torch.float64)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """HF rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the last dim."""
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, heads, T, hd); cos/sin (T, hd) broadcast over batch and heads
    return x * cos + rotate_half(x) * sin


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """HF repeat_kv: (B, KV, T, hd) -> (B, KV*n_rep, T, hd); kv head j serves query heads j*n_rep..j*n_rep+n_rep-1."""
    if n_rep == 1:
        return x
    b, kv, t, hd = x.shape
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, hd).reshape(b, kv * n_rep, t, hd)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.headDim
        self.q_proj = nn.Linear(cfg.dim, cfg.nHeads * hd, bias=cfg.qkvBias)
        self.k_proj = nn.Linear(cfg.dim, cfg.nKvHeads * hd, bias=cfg.qkvBias)
        self.v_proj = nn.Linear(cfg.dim, cfg.nKvHeads * hd, bias=cfg.qkvBias)
        self.o_proj = nn.Linear(cfg.nHeads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask, cache=None, pos: int = 0):
        """x (B, T, C). cos/sin (T, hd) for positions pos..pos+T-1. mask (T, S) additive or None.
        cache: (k_cache, v_cache) each (B, KV, maxSeqLen, hd), written at pos..pos+T-1; S = pos+T."""
        cfg = self.cfg
        b, t, _ = x.shape
        hd = cfg.headDim
        q = self.q_proj(x).view(b, t, cfg.nHeads, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, cfg.nKvHeads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, cfg.nKvHeads, hd).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            kc, vc = cache
            kc[:, :, pos : pos + t] = k
            vc[:, :, pos : pos + t] = v
            k = kc[:, :, : pos + t]
            v = vc[:, :, : pos + t]
        n_rep = cfg.nHeads // cfg.nKvHeads
        k = repeat_kv(k, n_rep)
        v = repeat_kv(v, n_rep)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd))  # (B, H, T, S)
        if mask is not None:
            att = att + mask
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(b, t, cfg.nHeads * hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.hiddenDim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.hiddenDim, bias=False)
        self.down_proj = nn.Linear(cfg.hiddenDim, cfg.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.normEps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.normEps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, cache=None, pos: int = 0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, pos)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocabSize, cfg.dim)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.nLayers)])
        self.norm = RMSNorm(cfg.dim, cfg.normEps)


class LlamaForCausalLM(nn.Module):
    """state_dict() keys are the HF names; with tied embeddings lm_head.weight is the embedding."""

    def __init__(self, cfg: LlamaConfig, dtype=torch.float32):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocabSize, bias=False)
        if cfg.tieEmbeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.to(dtype)
        cos, sin = rope_tables(cfg, dtype)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        causal = torch.full((cfg.maxSeqLen, cfg.maxSeqLen), float("-inf"), dtype=dtype).triu(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def named_hf_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every parameter under its HF name, in srlm's paramSpecs order (tied: no lm_head.weight)."""
        out = [("model.embed_tokens.weight", self.model.embed_tokens.weight)]
        for i, layer in enumerate(self.model.layers):
            a, m = layer.self_attn, layer.mlp
            pre = f"model.layers.{i}."
            out.append((pre + "input_layernorm.weight", layer.input_layernorm.weight))
            for pname in ("q_proj", "k_proj", "v_proj"):
                lin = getattr(a, pname)
                out.append((pre + f"self_attn.{pname}.weight", lin.weight))
                if lin.bias is not None:
                    out.append((pre + f"self_attn.{pname}.bias", lin.bias))
            out.append((pre + "self_attn.o_proj.weight", a.o_proj.weight))
            out.append((pre + "post_attention_layernorm.weight", layer.post_attention_layernorm.weight))
            out.append((pre + "mlp.gate_proj.weight", m.gate_proj.weight))
            out.append((pre + "mlp.up_proj.weight", m.up_proj.weight))
            out.append((pre + "mlp.down_proj.weight", m.down_proj.weight))
        out.append(("model.norm.weight", self.model.norm.weight))
        if not self.cfg.tieEmbeddings:
            out.append(("lm_head.weight", self.lm_head.weight))
        return out

    def forward(self, tokens: torch.Tensor, caches=None, pos: int = 0) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, V). With caches (one (k, v) per layer) the tokens sit at
        positions pos..pos+T-1 and attend to the cached positions before them."""
        t = tokens.shape[1]
        cos = self.rope_cos[pos : pos + t]
        sin = self.rope_sin[pos : pos + t]
        mask = None if t == 1 else self.causal_mask[pos : pos + t, : pos + t]
        x = self.model.embed_tokens(tokens)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, mask, None if caches is None else caches[i], pos)
        return self.lm_head(self.model.norm(x))

    def new_caches(self, batch: int):
        cfg = self.cfg
        shape = (batch, cfg.nKvHeads, cfg.maxSeqLen, cfg.headDim)
        dt = self.rope_cos.dtype
        return [(torch.zeros(shape, dtype=dt), torch.zeros(shape, dtype=dt)) for _ in range(cfg.nLayers)]

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, total_len: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Batched sampling, temperature 1, multinomial, KV cache; returns (B, total_len) tokens."""
        b, p = prompt.shape
        caches = self.new_caches(b)
        out = torch.empty((b, total_len), dtype=torch.long)
        out[:, :p] = prompt
        logits = self.forward(prompt, caches, 0)[:, -1]
        for pos in range(p, total_len):
            probs = torch.softmax(logits, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            out[:, pos] = nxt[:, 0]
            if pos + 1 < total_len:
                logits = self.forward(nxt, caches, pos)[:, -1]
        return out


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() dedups tied weights


def matmul_flops_per_token(cfg: LlamaConfig, seq: int) -> float:
    """Forward matmul FLOPs per token (2 per multiply-add): every Linear, plus the attention
    QK^T and AV products as the eager code computes them (full T x T, the mask applied after)."""
    hd = cfg.headDim
    q, kv = cfg.nHeads * hd, cfg.nKvHeads * hd
    per_layer = 2 * (cfg.dim * q + 2 * cfg.dim * kv + q * cfg.dim + 3 * cfg.dim * cfg.hiddenDim)
    per_layer += 2 * 2 * seq * q  # QK^T and AV: each T*hd MACs per query head per token
    return cfg.nLayers * per_layer + 2 * cfg.dim * cfg.vocabSize


class LoraLinear(nn.Module):
    """Minimal LoRA (Hu et al. 2021) around a frozen nn.Linear: y = base(x) + s * (x A^T) B^T with
    A (r, in) kaiming-uniform(a=sqrt(5)) and B (out, r) zero, s = alpha / r (PEFT's layout, no dropout)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale


LORA_TARGETS = (("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"),
                ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj"))


def add_lora(model: LlamaForCausalLM, r: int, alpha: float) -> list[nn.Parameter]:
    """Freeze every parameter of `model`, wrap the seven Linear layers of each block in LoraLinear;
    returns the adapter parameters (the only ones with requires_grad)."""
    for p in model.parameters():
        p.requires_grad_(False)
    out: list[nn.Parameter] = []
    for layer in model.model.layers:
        for parent_name, lin_name in LORA_TARGETS:
            parent = getattr(layer, parent_name)
            wrapped = LoraLinear(getattr(parent, lin_name), r, alpha)
            setattr(parent, lin_name, wrapped)
            out += [wrapped.lora_A, wrapped.lora_B]
    return out


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def bench_matmul(n: int = 1024, min_time: float = 1.0) -> float:
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(3):
        torch.mm(a, b, out=c)
    best = float("inf")
    t_end = time.perf_counter() + min_time
    reps = 0
    while reps < 5 or time.perf_counter() < t_end:  # best of several single runs
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return 2 * n**3 / best / 1e9


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::mv", "aten::addmv", "aten::dot"}


def profile_matmul_share(step_fn, steps: int) -> dict:
    """Self CPU time of the BLAS-backed ops over the wall time of `steps` profiled training steps."""
    try:
        from torch.profiler import ProfilerActivity, profile

        prof_ctx = profile(activities=[ProfilerActivity.CPU])
    except Exception:  # pragma: no cover - very old torch
        prof_ctx = torch.autograd.profiler.profile()
    t0 = time.perf_counter()
    with prof_ctx as prof:
        for _ in range(steps):
            step_fn()
    wall = time.perf_counter() - t0
    by_op: dict[str, float] = {}
    total_self = 0.0
    for e in prof.key_averages():
        total_self += e.self_cpu_time_total
        if e.key in MATMUL_OPS:
            by_op[e.key] = by_op.get(e.key, 0.0) + e.self_cpu_time_total
    mm_us = sum(by_op.values())
    top = sorted(((e.self_cpu_time_total, e.key) for e in prof.key_averages()), reverse=True)[:8]
    return {
        "matmul_ms_per_step": mm_us / 1e3 / steps,
        "share_of_wall": mm_us / 1e6 / wall,
        "share_of_op_self_time": mm_us / total_self if total_self else float("nan"),
        "profiled_wall_s": wall,
        "by_op_ms": {k: round(v / 1e3, 2) for k, v in by_op.items()},
        "top_ops_ms": [[k, round(v / 1e3, 2)] for v, k in top],
    }


def bench_dpo(model: LlamaForCausalLM, pairs: int, prompt: int, steps: int, warmup: int, seed: int,
              beta: float = 0.1, max_grad_norm: float = 1.0, lr: float = 1e-4, lora_r: int = 8, lora_alpha: float = 16.0) -> dict:
    """One DPO optimizer step, full-parameter and LoRA, on (2 * pairs, T) rows: chosen rows then
    rejected rows, each pair sharing its first `prompt` tokens; the completion is the rest, and its
    tokens (positions prompt .. T-1, predicted at prompt-1 .. T-2) are the ones summed. `model` is
    the initial policy and the reference; it is copied for each mode, not trained."""
    cfg = model.cfg
    T = cfg.maxSeqLen
    n = pairs
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, cfg.vocabSize, (2 * n, T), generator=g)
    tokens[n:, :prompt] = tokens[:n, :prompt]
    mask = torch.zeros(2 * n, T - 1)
    mask[:, prompt - 1 :] = 1.0
    labels = tokens[:, 1:].unsqueeze(-1)

    def seq_logps(m: nn.Module) -> torch.Tensor:
        logits = m(tokens)[:, :-1]  # (2n, T-1, V): position t predicts token t+1
        lp = torch.log_softmax(logits, dim=-1).gather(-1, labels).squeeze(-1)
        return (lp * mask).sum(-1)

    with torch.no_grad():
        ref = seq_logps(model)  # the reference: computed once, before any step
    ref_c, ref_r = ref[:n], ref[n:]
    out = {}
    for mode in ("full", "lora"):
        policy = copy.deepcopy(model)
        params = list(policy.parameters()) if mode == "full" else add_lora(policy, lora_r, lora_alpha)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=True)

        def step():
            t0 = time.perf_counter()
            pol = seq_logps(policy)
            z = beta * ((pol[:n] - ref_c) - (pol[n:] - ref_r))
            loss = -F.logsigmoid(z).mean()
            loss.backward()
            t1 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            t2 = time.perf_counter()
            return t2 - t0, t1 - t0, t2 - t1, loss.item()

        for _ in range(warmup):
            step()
        ts = [step() for _ in range(steps)]
        step_s = statistics.median(t[0] for t in ts)
        out[mode] = {
            "tok_s": round(2 * n * T / step_s, 1),
            "step_ms": round(step_s * 1e3, 2),
            "fwd_bwd_ms": round(statistics.median(t[1] for t in ts) * 1e3, 2),
            "opt_ms": round(statistics.median(t[2] for t in ts) * 1e3, 2),
            "best_step_ms": round(min(t[0] for t in ts) * 1e3, 2),
            "trained_params": sum(p.numel() for p in params),
            "loss": round(ts[-1][3], 5),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--dim", type=int, default=384, help="model width")
    ap.add_argument("--layers", type=int, default=6, help="transformer blocks")
    ap.add_argument("--heads", type=int, default=6, help="query heads")
    ap.add_argument("--kv-heads", type=int, default=2, help="key/value heads (GQA)")
    ap.add_argument("--hidden", type=int, default=1024, help="SwiGLU hidden width")
    ap.add_argument("--vocab", type=int, default=512, help="vocabulary size")
    ap.add_argument("--seq", type=int, default=128, help="sequence length (also maxSeqLen)")
    ap.add_argument("--batch", type=int, default=8, help="sequences per batch (also sampling batch)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--tied", action="store_true", help="tie lm_head to the embedding")
    ap.add_argument("--qkv-bias", action="store_true", help="Qwen2-style bias on q/k/v")
    ap.add_argument("--prompt", type=int, default=16, help="sampling prompt length")
    ap.add_argument("--sample-runs", type=int, default=3, help="timed sampling runs (median reported)")
    ap.add_argument("--profile-steps", type=int, default=3, help="training steps under torch.profiler (0: skip)")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed")
    ap.add_argument("--dpo-steps", type=int, default=4, help="timed DPO steps per mode, after 1 warm-up (0: skip DPO)")
    ap.add_argument("--dpo-pairs", type=int, default=0, help="DPO pairs per step (0: batch // 2, so 2 x pairs rows = batch)")
    ap.add_argument("--dpo-prompt", type=int, default=0, help="DPO prompt tokens per row (0: seq // 2); the rest is the completion")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with every number")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocabSize=args.vocab, dim=args.dim, nLayers=args.layers, nHeads=args.heads, nKvHeads=args.kv_heads,
        hiddenDim=args.hidden, maxSeqLen=args.seq, tieEmbeddings=args.tied, qkvBias=args.qkv_bias,
    )
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOTO"))}

    def say(*a):
        print(*a, flush=True)

    say(f"torch {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()}, "
        f"BLAS env {blas_env or '{}'}")

    # (a) matmul
    gflops = bench_matmul()
    say(f"matmul 1024^3 fp32: {gflops:.1f} GFLOP/s")

    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # GPT-2-ish init so the loss is sane; values do not matter for speed
        for name, p in model.named_hf_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    init_model = copy.deepcopy(model) if args.dpo_steps > 0 else None  # DPO starts from the initial weights
    n_params = param_count(model)
    say(f"model: {n_params/1e6:.2f}M params, {asdict(cfg)}")

    B, T = args.batch, args.seq
    data = torch.randint(0, cfg.vocabSize, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, foreach=True)

    def train_step():
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, cfg.vocabSize), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    # (b) training
    for _ in range(args.warmup):
        train_step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = train_step()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    best_step_s = min(times)
    train_tps = B * T / step_s
    say(f"train: {train_tps:.0f} tok/s (median step {step_s*1e3:.1f} ms, best {best_step_s*1e3:.1f} ms -> "
        f"{B*T/best_step_s:.0f} tok/s, mean {sum(times)/len(times)*1e3:.1f} ms; {args.steps} steps of {B}x{T}, "
        f"loss {loss.item():.3f})")

    # (c) forward only
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        ftimes = []
        for _ in range(max(3, args.steps)):
            t0 = time.perf_counter()
            model(x)
            ftimes.append(time.perf_counter() - t0)
    fwd_s = statistics.median(ftimes)
    fwd_tps = B * T / fwd_s
    say(f"forward (no_grad): {fwd_tps:.0f} tok/s (median {fwd_s*1e3:.1f} ms per {B}x{T}, best {min(ftimes)*1e3:.1f} ms)")

    # (d) sampling with KV cache
    prompt_len = min(args.prompt, T - 1)
    prompt = torch.randint(0, cfg.vocabSize, (B, prompt_len))
    gen = torch.Generator().manual_seed(args.seed)
    model.generate(prompt, min(T, prompt_len + 4), gen)  # warm-up
    gen_times = []
    for _ in range(max(1, args.sample_runs)):
        t0 = time.perf_counter()
        out = model.generate(prompt, T, gen)
        gen_times.append(time.perf_counter() - t0)
    gen_s = statistics.median(gen_times)
    n_new = B * (T - prompt_len)
    sample_tps = n_new / gen_s
    assert out.shape == (B, T)
    say(f"sample (KV cache, batch {B}, prompt {prompt_len} -> {T}): {sample_tps:.0f} new tok/s "
        f"(median of {len(gen_times)} runs, {gen_s*1e3:.0f} ms incl. prefill; best {n_new/min(gen_times):.0f}; "
        f"{(B*T)/gen_s:.0f} tok/s counting the prompt)")

    # (e) matmul share of a training step
    fl_fwd = matmul_flops_per_token(cfg, T)
    fl_step = 3 * fl_fwd * B * T  # forward + backward (2x: grad wrt inputs and wrt weights)
    est_share = fl_step / (gflops * 1e9) / step_s
    say(f"matmul share of a train step, estimate (3 x fwd matmul FLOPs {fl_step/1e9:.2f} GFLOP / "
        f"{gflops:.0f} GFLOP/s / step time): {est_share*100:.0f}%  (model matmul GFLOP/s achieved: "
        f"{fl_step/step_s/1e9:.1f})")
    prof = None
    if args.profile_steps > 0:
        prof = profile_matmul_share(train_step, args.profile_steps)
        prof["share_of_unprofiled_step"] = prof["matmul_ms_per_step"] / 1e3 / step_s
        say(f"matmul share of a train step, torch.profiler (self time of {'/'.join(sorted(prof['by_op_ms']))}): "
            f"{prof['matmul_ms_per_step']:.0f} ms per step = {prof['share_of_unprofiled_step']*100:.0f}% of the "
            f"unprofiled {step_s*1e3:.0f} ms step; {prof['share_of_op_self_time']*100:.0f}% of all op self time; "
            f"{prof['share_of_wall']*100:.0f}% of the profiled wall ({prof['profiled_wall_s']/args.profile_steps*1e3:.0f} ms "
            f"per step, profiler overhead included)")
        say("  top ops (self ms over profiled steps): " + ", ".join(f"{k} {v}" for k, v in prof["top_ops_ms"]))

    # (f) DPO step, full-parameter and LoRA
    dpo = None
    if args.dpo_steps > 0:
        pairs = args.dpo_pairs or max(1, B // 2)
        dpo_prompt = args.dpo_prompt or T // 2
        dpo = bench_dpo(init_model, pairs, dpo_prompt, args.dpo_steps, 1, args.seed)
        for mode, d in dpo.items():
            say(f"dpo-{mode} ({pairs} pairs x 2 x {T}, completion {T - dpo_prompt} tokens): {d['tok_s']:.0f} tok/s "
                f"(median step {d['step_ms']:.1f} ms: fwd+loss+bwd {d['fwd_bwd_ms']:.1f}, clip+AdamW {d['opt_ms']:.1f}; "
                f"best {d['best_step_ms']:.1f} ms; {d['trained_params']/1e6:.3f}M trained, loss {d['loss']:.4f})")

    if args.json:
        print(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(), "blas_env": blas_env,
            "config": asdict(cfg), "params": n_params, "batch": B, "seq": T,
            "matmul_gflops": round(gflops, 2),
            "train_tok_s": round(train_tps, 1), "train_step_ms": round(step_s * 1e3, 2),
            "train_best_step_ms": round(best_step_s * 1e3, 2), "train_best_tok_s": round(B * T / best_step_s, 1),
            "forward_tok_s": round(fwd_tps, 1),
            "sample_new_tok_s": round(sample_tps, 1), "sample_best_new_tok_s": round(n_new / min(gen_times), 1), "sample_prompt": prompt_len,
            "matmul_share_estimate": round(est_share, 3),
            "matmul_share_profiler": None if prof is None else round(prof["share_of_unprofiled_step"], 3),
            "profiler": prof,
            "dpo": dpo,
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
