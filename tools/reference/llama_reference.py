#!/usr/bin/python3
"""Independent Llama-family reference forward pass (PyTorch, float64 by default).

Written from the math, not from the C++ code, to cross-check GPTQ Workbench's forward pass
and perplexity. Loads a Hugging Face folder (config.json + model.safetensors or a sharded
index) or a llama2.c .bin checkpoint. HF checkpoints store q/k rows permuted for the
rotate_half RoPE; llama2.c checkpoints are unpermuted and use interleaved pairs (2i, 2i+1).
Each loader uses its own convention natively, so agreement between the two checks both
loaders and the permutation.

  llama_reference.py ppl      --model PATH --ids IDS.json [--seqlen 512] [--max-windows N]
  llama_reference.py generate --model PATH [--tokens N]
  llama_reference.py logits   --model PATH --ids IDS.json --out FILE.npy [--seqlen 512]
  (all take --dtype float64|float32, --tokenizer PATH/tokenizer.json for decoding)
"""
import argparse, json, math, os, struct, sys
import numpy as np
import torch

# ---------------------------------------------------------------- loading

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
              "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """Parse a .safetensors file with numpy only: u64 LE header length, JSON header, data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bf16 = upper half of an fp32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(a.astype(np.float64 if a.dtype == np.float64 else np.float32))
    return out


def load_hf(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    if cfg.get("rope_scaling"):
        sys.exit("rope_scaling is not implemented in the reference")
    idx = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    w = {}
    for fn in files:
        w.update(read_safetensors(os.path.join(folder, fn)))
    H, KV = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    m = dict(dim=cfg["hidden_size"], n_layers=cfg["num_hidden_layers"], n_heads=H, n_kv_heads=KV,
             head_dim=cfg.get("head_dim") or cfg["hidden_size"] // H, vocab=cfg["vocab_size"],
             eps=cfg.get("rms_norm_eps", 1e-6), theta=cfg.get("rope_theta", 10000.0),
             max_pos=cfg.get("max_position_embeddings", 2048), rope="half", bos=cfg.get("bos_token_id", 1))
    p = "model.layers.%d."
    m["layers"] = [{
        "attn_norm": w[p % i + "input_layernorm.weight"],
        "wq": w[p % i + "self_attn.q_proj.weight"], "wk": w[p % i + "self_attn.k_proj.weight"],
        "wv": w[p % i + "self_attn.v_proj.weight"], "wo": w[p % i + "self_attn.o_proj.weight"],
        "bq": w.get(p % i + "self_attn.q_proj.bias"), "bk": w.get(p % i + "self_attn.k_proj.bias"),
        "bv": w.get(p % i + "self_attn.v_proj.bias"),  # Qwen2: q/k/v biases
        "ffn_norm": w[p % i + "post_attention_layernorm.weight"],
        "w_gate": w[p % i + "mlp.gate_proj.weight"], "w_up": w[p % i + "mlp.up_proj.weight"],
        "w_down": w[p % i + "mlp.down_proj.weight"]} for i in range(m["n_layers"])]
    m["embed"] = w["model.embed_tokens.weight"]
    m["norm"] = w["model.norm.weight"]
    m["head"] = w.get("lm_head.weight", m["embed"])  # tied when lm_head.weight is absent
    if "lm_head.weight" not in w and not cfg.get("tie_word_embeddings", True):
        sys.exit("lm_head.weight missing but tie_word_embeddings is false")
    return m


def load_llama2c(path, theta=10000.0):
    raw = open(path, "rb").read()
    dim, hidden, L, H, KV, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // H
    buf = np.frombuffer(raw, dtype=np.float32, offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = torch.from_numpy(buf[pos:pos + n].copy().reshape(shape))
        pos += n
        return a
    embed = take(vocab, dim)
    rms_att, wq, wk = take(L, dim), take(L, H * hd, dim), take(L, KV * hd, dim)
    wv, wo = take(L, KV * hd, dim), take(L, dim, H * hd)
    rms_ffn, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    norm = take(dim)
    pos += seq_len * hd // 2 * 2  # freq_cis_real, freq_cis_imag (unused)
    head = embed if shared else take(vocab, dim)
    assert pos == buf.size, "llama2.c file size does not match its header"
    m = dict(dim=dim, n_layers=L, n_heads=H, n_kv_heads=KV, head_dim=hd, vocab=vocab, eps=1e-5,
             theta=theta, max_pos=seq_len, rope="interleaved", bos=1, embed=embed, norm=norm, head=head)
    m["layers"] = [dict(attn_norm=rms_att[i], wq=wq[i], wk=wk[i], wv=wv[i], wo=wo[i], bq=None, bk=None,
                        bv=None, ffn_norm=rms_ffn[i], w_gate=w1[i], w_up=w3[i], w_down=w2[i])
                   for i in range(L)]
    return m


def load_model(path, dtype=torch.float64):
    m = load_llama2c(path) if os.path.isfile(path) else load_hf(path)
    cast = lambda t: None if t is None else t.to(dtype).contiguous()
    m["layers"] = [{k: cast(v) for k, v in l.items()} for l in m["layers"]]
    for k in ("embed", "norm", "head"):
        m[k] = cast(m[k])
    m["dtype"] = dtype
    return m

# ---------------------------------------------------------------- math
# Kept as module-level functions so bench_forward_torch.py can wrap them with timers.


def linear(x, w, b=None):
    y = x @ w.t()
    return y if b is None else y + b


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, hd, theta, dtype):
    """cos/sin of pos * theta^(-2i/hd), i < hd/2, computed in float64; shape (T, hd/2)."""
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rope(x, cos, sin, style):
    """x: (B, heads, T, hd). 'half': rotate_half (pairs i, i+hd/2), 'interleaved': pairs (2i, 2i+1)."""
    if style == "half":
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def attention(q, k, v):
    """Causal attention. q: (B, H, T, hd); k, v: (B, KV, T, hd); query head h uses kv head h // (H/KV)."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    T = q.shape[2]
    s = (q @ k.transpose(-1, -2)).div_(math.sqrt(q.shape[-1]))
    s.masked_fill_(torch.ones(T, T, dtype=torch.bool).triu_(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def swiglu(g, u):
    return torch.nn.functional.silu(g) * u


def block(m, l, x, cos, sin):
    B, T, _ = x.shape
    H, KV, hd = m["n_heads"], m["n_kv_heads"], m["head_dim"]
    h = rmsnorm(x, l["attn_norm"], m["eps"])
    q = linear(h, l["wq"], l["bq"]).view(B, T, H, hd).transpose(1, 2)
    k = linear(h, l["wk"], l["bk"]).view(B, T, KV, hd).transpose(1, 2)
    v = linear(h, l["wv"], l["bv"]).view(B, T, KV, hd).transpose(1, 2)
    q, k = rope(q, cos, sin, m["rope"]), rope(k, cos, sin, m["rope"])
    a = attention(q, k, v).transpose(1, 2).reshape(B, T, H * hd)
    x = x + linear(a, l["wo"])
    h = rmsnorm(x, l["ffn_norm"], m["eps"])
    return x + linear(swiglu(linear(h, l["w_gate"]), linear(h, l["w_up"])), l["w_down"])


def forward(m, ids):
    """ids: (B, T) int64 tensor, positions 0..T-1. Returns logits (B, T, vocab)."""
    T = ids.shape[1]
    cos, sin = rope_tables(T, m["head_dim"], m["theta"], m["dtype"])
    x = m["embed"][ids]
    for l in m["layers"]:
        x = block(m, l, x, cos, sin)
    return linear(rmsnorm(x, m["norm"], m["eps"]), m["head"])

# ---------------------------------------------------------------- commands


def perplexity(m, ids, seqlen, max_windows=None, batch=1):
    n = len(ids) // seqlen
    if max_windows:
        n = min(n, max_windows)
    if n == 0:
        sys.exit("text shorter than one window")
    t = torch.tensor(ids[:n * seqlen], dtype=torch.int64).view(n, seqlen)
    nll = []
    for i in range(0, n, batch):
        w = t[i:i + batch]
        lp = torch.log_softmax(forward(m, w)[:, :-1].to(torch.float64), dim=-1)
        nll.append(-lp.gather(-1, w[:, 1:, None]).squeeze(-1).mean(dim=1))  # per-window mean
    nll = torch.cat(nll)
    mean = nll.mean().item()
    return {"ppl": math.exp(mean), "windows": n, "tokens": len(ids), "seqlen": seqlen,
            "nll_mean": mean, "predictions": n * (seqlen - 1), "dtype": str(m["dtype"]).split(".")[-1]}


def decode(ids, tok_path):
    """SentencePiece-style decoding with tokenizer.json's vocab: '▁' -> ' ', <0xNN> -> byte."""
    vocab = json.load(open(tok_path))["model"]["vocab"]
    inv = {i: s for s, i in vocab.items()}
    out = bytearray()
    for i in ids:
        s = inv.get(i, "")
        if s in ("<s>", "</s>", "<unk>"):
            continue
        if len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
            out.append(int(s[3:5], 16))
        else:
            out += s.replace("\u2581", " ").encode("utf-8")
    text = out.decode("utf-8", errors="replace")
    return text[1:] if text.startswith(" ") else text


def generate(m, n_tokens):
    ids = [m["bos"]]
    with torch.inference_mode():
        for _ in range(n_tokens):
            if len(ids) >= m["max_pos"]:
                break
            ids.append(int(forward(m, torch.tensor([ids]))[0, -1].argmax()))
    return ids


def find_tokenizer(model_path, given):
    if given:
        return given if given.endswith(".json") else os.path.join(given, "tokenizer.json")
    d = os.path.dirname(os.path.abspath(model_path)) if os.path.isfile(model_path) else model_path
    for c in (os.path.join(d, "tokenizer.json"), os.path.join(d, "..", "tokenizer.json")):
        if os.path.exists(c):
            return c
    return None


def read_ids(path):
    j = json.load(open(path))
    return j["ids"] if isinstance(j, dict) else j


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["ppl", "generate", "logits"])
    ap.add_argument("--model", required=True, help="HF folder or llama2.c .bin")
    ap.add_argument("--ids", help='JSON {"ids": [...]} (gptqw tokenize --json) or a JSON list')
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--max-windows", type=int)
    ap.add_argument("--batch", type=int, default=1, help="windows per forward")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--out")
    ap.add_argument("--tokenizer")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    m = load_model(a.model, getattr(torch, a.dtype))
    with torch.inference_mode():
        if a.cmd == "ppl":
            r = perplexity(m, read_ids(a.ids), a.seqlen, a.max_windows, a.batch)
            print(json.dumps(dict(r, model=a.model), indent=1))
        elif a.cmd == "generate":
            ids = generate(m, a.tokens)
            tok = find_tokenizer(a.model, a.tokenizer)
            print(json.dumps({"ids": ids, "text": decode(ids, tok) if tok else None}, ensure_ascii=False))
        else:
            ids = read_ids(a.ids)[:a.seqlen]
            lg = forward(m, torch.tensor([ids]))[0].numpy()
            np.save(a.out, lg)
            print(json.dumps({"out": a.out, "shape": list(lg.shape), "dtype": a.dtype}))


if __name__ == "__main__":
    main()
