#!/usr/bin/python3
"""Python reference forward for the Llama family, with PEFT-style LoRA, on Debian's python3-torch.

Written from the semantics of transformers' modeling_llama / modeling_mistral / modeling_qwen2 /
modeling_qwen3 (eager attention) and PEFT's LoraLayer, independently of alignkit's C++ code:
RMSNorm in fp32, rotary embeddings (default and llama3 scaling), grouped-query attention with an
fp32 softmax and an additive mask at the dtype's minimum, SiLU MLP, tied embeddings, Qwen2's q/k/v
biases and Qwen3's per-head q/k RMSNorm. It checks itself against transformers' own logits
(tests/fixtures/oracle) and then serves as the oracle for what those fixtures do not cover: LoRA,
new shapes and other dtypes.

usage: llama_reference.py --model DIR [--adapter DIR] --inputs IN.safetensors
                          --expect EXPECTED.safetensors [--expect-key logits] --tolerance T
                          [--dtype float32|bfloat16] [--quantize nf4|int8]
Exit 0 when max |reference - expected| over real (mask == 1) positions is within T.

       llama_reference.py --model DIR --inputs IN.safetensors --generate N
Greedy generation of N tokens from left-padded prompts, as transformers' generate does it
(positions = cumsum(mask) - 1), but recomputing the whole sequence each step (no KV cache).
Prints one JSON list of new token ids per row.
"""
import argparse
import json
import math
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        t = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]) if raw else torch.empty(0, dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


# QLoRA's NF4 code values (Dettmers et al., 2023, appendix E), ascending.
NF4_CODES = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                          -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                          0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                          0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])


def nf4_roundtrip(w):
    """Each block of 64 scaled by its absmax, each value replaced by the nearest code (fp32 absmax)."""
    flat = w.float().reshape(-1)
    pad = (-flat.numel()) % 64
    blocks = torch.cat([flat, flat.new_zeros(pad)]).view(-1, 64)
    absmax = blocks.abs().amax(1, keepdim=True)
    absmax = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    nearest = ((blocks / absmax)[..., None] - NF4_CODES).abs().argmin(-1)
    return (NF4_CODES[nearest] * absmax).reshape(-1)[:flat.numel()].view(w.shape).to(w.dtype)


def int8_roundtrip(w):
    """Per output row: scale = absmax / 127, q = round(w / scale)."""
    scale = w.float().abs().amax(1, keepdim=True) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (torch.round(w.float() / scale).clamp(-127, 127) * scale).to(w.dtype)


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def rms_norm(x, weight, eps):
    dtype = x.dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def inv_freq(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) != "llama3":
        return freq
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / freq
    scaled = torch.where(wavelen > low_wavelen, freq / factor, freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Model:
    def __init__(self, model_dir, adapter_dir=None, dtype=torch.float32, quantize=None):
        with open(f"{model_dir}/config.json") as f:
            self.cfg = json.load(f)
        self.arch = self.cfg["architectures"][0]
        self.w = {k: v.to(dtype) if v.is_floating_point() else v
                  for k, v in read_safetensors(f"{model_dir}/model.safetensors").items()}
        self.dtype = dtype
        if quantize:  # the decoder's projections only; embeddings, norms and the head stay as they are
            roundtrip = nf4_roundtrip if quantize == "nf4" else int8_roundtrip
            for k in list(self.w):
                if k.startswith("model.layers.") and k.endswith(".weight") and k.split(".")[-2] in PROJECTIONS:
                    self.w[k] = roundtrip(self.w[k])
        self.lora = {}
        if adapter_dir:
            with open(f"{adapter_dir}/adapter_config.json") as f:
                acfg = json.load(f)
            r, alpha = acfg["r"], acfg["lora_alpha"]
            self.scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
            for k, v in read_safetensors(f"{adapter_dir}/adapter_model.safetensors").items():
                name = k[len("base_model.model."):]
                if ".lora_" not in name:  # a modules_to_save parameter (a SEQ_CLS adapter's score head)
                    self.w[name] = v.to(dtype)
                    continue
                module, which = name.rsplit(".lora_", 1)
                self.lora.setdefault(module, {})[which[0]] = v.to(torch.float32)

    def linear(self, name, x):
        y = x @ self.w[f"{name}.weight"].t()
        if f"{name}.bias" in self.w:
            y = y + self.w[f"{name}.bias"]
        if name in self.lora:  # PEFT: result + lora_B(lora_A(dropout(x))) * scaling
            a, b = self.lora[name]["A"], self.lora[name]["B"]
            y = y + ((x.to(torch.float32) @ a.t() @ b.t()) * self.scaling).to(y.dtype)
        return y

    def forward(self, ids, mask, pos=None):
        cfg = self.cfg
        heads = cfg["num_attention_heads"]
        kv_heads = cfg.get("num_key_value_heads", heads)
        head_dim = cfg.get("head_dim", cfg["hidden_size"] // heads)
        eps = cfg.get("rms_norm_eps", 1e-6)
        qwen3 = self.arch.startswith("Qwen3")
        b, t = ids.shape
        h = self.w["model.embed_tokens.weight"][ids]
        if pos is None:
            pos = torch.arange(t).unsqueeze(0).expand(b, t)
        freqs = pos.float()[..., None] * inv_freq(cfg, head_dim)[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype)[:, None], emb.sin().to(self.dtype)[:, None]
        minimum = torch.finfo(self.dtype).min
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        window = cfg.get("sliding_window") if self.arch.startswith("Mistral") else None
        if window:
            causal &= ~torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-window)
        visible = causal[None, None] & mask.bool()[:, None, None, :]
        additive = torch.zeros(b, 1, t, t, dtype=self.dtype).masked_fill(~visible, minimum)
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            x = rms_norm(h, self.w[f"{p}.input_layernorm.weight"], eps)
            q = self.linear(f"{p}.self_attn.q_proj", x).view(b, t, heads, head_dim)
            k = self.linear(f"{p}.self_attn.k_proj", x).view(b, t, kv_heads, head_dim)
            v = self.linear(f"{p}.self_attn.v_proj", x).view(b, t, kv_heads, head_dim).transpose(1, 2)
            if qwen3:
                q = rms_norm(q, self.w[f"{p}.self_attn.q_norm.weight"], eps)
                k = rms_norm(k, self.w[f"{p}.self_attn.k_norm.weight"], eps)
            q, k = q.transpose(1, 2), k.transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            groups = heads // kv_heads
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
            scores = q @ k.transpose(2, 3) / math.sqrt(head_dim) + additive
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            attn = (probs @ v).transpose(1, 2).reshape(b, t, heads * head_dim)
            h = h + self.linear(f"{p}.self_attn.o_proj", attn)
            x = rms_norm(h, self.w[f"{p}.post_attention_layernorm.weight"], eps)
            gate = self.linear(f"{p}.mlp.gate_proj", x)
            h = h + self.linear(f"{p}.mlp.down_proj", torch.nn.functional.silu(gate) * self.linear(f"{p}.mlp.up_proj", x))
        h = rms_norm(h, self.w["model.norm.weight"], eps)
        if "score.weight" in self.w:
            return h @ self.w["score.weight"].t()
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        return h @ head.t()


def generate_greedy(model, ids, mask, new_tokens):
    rows = [[] for _ in range(ids.shape[0])]
    for _ in range(new_tokens):
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        nxt = model.forward(ids, mask, pos)[:, -1].float().argmax(-1)
        for row, token in zip(rows, nxt.tolist()):
            row.append(token)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter")
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--expect")
    parser.add_argument("--generate", type=int)
    parser.add_argument("--expect-key", default="logits")
    parser.add_argument("--tolerance", type=float)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--quantize", choices=["nf4", "int8"])
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    inputs = read_safetensors(args.inputs)
    if args.generate:
        with torch.no_grad():
            model = Model(args.model, args.adapter, dtype)
            for row in generate_greedy(model, inputs["input_ids"], inputs["attention_mask"], args.generate):
                print(json.dumps(row))
        return 0
    if args.expect is None or args.tolerance is None:
        parser.error("--expect and --tolerance are needed to compare")
    expected = read_safetensors(args.expect)[args.expect_key].to(torch.float32)
    with torch.no_grad():
        got = Model(args.model, args.adapter, dtype, args.quantize).forward(inputs["input_ids"], inputs["attention_mask"]).float()
    keep = inputs["attention_mask"].bool()[..., None].expand_as(got)
    worst = (got - expected).abs()[keep].max().item()
    print(f"{args.model}{' + ' + args.adapter if args.adapter else ''} ({args.dtype}): max |diff| {worst:.3g} "
          f"(tolerance {args.tolerance:g})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
