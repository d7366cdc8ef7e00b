#!/usr/bin/python3
"""Independent Llama-family reference forward pass (PyTorch, float64 by default).

Written from the math, not from the C++ code, to cross-check GPTQ Workbench's forward pass
and perplexity. Loads a Hugging Face folder (config.json + model.safetensors or a sharded
index) or a llama2.c .bin checkpoint. HF checkpoints store q/k rows permuted for the
rotate_half RoPE; llama2.c checkpoints are unpermuted and use interleaved pairs (2i, 2i+1).
Each loader uses its own convention natively, so agreement between the two checks both
loaders and the permutation.

Architectures (HF folders): llama (attention_bias on q/k/v/o, mlp_bias), mistral, qwen2 (q/k/v
biases), qwen3 (RMSNorm over head_dim of each query and key head, weights self_attn.q_norm /
k_norm, before RoPE; head_dim 128 unless given; attention_bias on q/k/v/o). RoPE scaling
(rope_scaling / rope_parameters): linear, dynamic, llama3, yarn, written from the definitions in
transformers' modeling_rope_utils (see rope_inv_freq). Which tensors must exist is derived from
config.json here, not from the file: a bias or norm the config implies but the file lacks is an
error. Large vocabularies: embeddings and lm_head stay float32 (exact for bf16/f16 files) and
the head's product is taken in float64 chunks.

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
    """Parse a .safetensors file with numpy only: u64 LE header length, JSON header, data.
    The file is memory-mapped, so only the converted float32 tensors take memory."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bf16 = upper half of an fp32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(np.array(a, dtype=np.float64 if a.dtype == np.float64 else np.float32))
    return out


def rope_inv_freq(cfg, hd, theta, T):
    """Frequencies of the hd/2 rotary pairs and the cos/sin factor, for windows of T tokens.

    From transformers' modeling_rope_utils definitions, in float64:
      default  theta^(-2i/d)
      linear   default / factor
      dynamic  base theta * (factor * L / max_pos - (factor - 1))^(d/(d-2)), L = max(T, max_pos)
      llama3   wavelength 2 pi / f: above orig/low_freq_factor -> f / factor; below
               orig/high_freq_factor -> f; between: (1 - s) f / factor + s f with
               s = (orig / wavelength - low) / (high - low)
      yarn     ramp over dims [floor(cd(beta_fast)), ceil(cd(beta_slow))] with
               cd(r) = d ln(max_pos / (2 pi r)) / (2 ln theta); f = interp (1 - e) + extrap e,
               e = 1 - clamp((i - low) / (high - low), 0, 1); cos/sin times 0.1 ln(factor) + 1
    """
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    d = hd
    i = torch.arange(0, d // 2, dtype=torch.float64)
    default = theta ** (-2.0 * i / d)
    if kind == "default":
        return default, 1.0
    factor = float(rs["factor"])
    if kind == "linear":
        return default / factor, 1.0
    max_pos = cfg.get("max_position_embeddings", 2048)
    if kind == "dynamic":
        L = max(T, max_pos)
        base = theta * (factor * L / max_pos - (factor - 1)) ** (d / (d - 2))
        return base ** (-2.0 * i / d), 1.0
    if kind == "llama3":
        low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
        orig = float(rs["original_max_position_embeddings"])
        out = []
        for f in default.tolist():
            wl = 2 * math.pi / f
            if wl > orig / low:
                out.append(f / factor)
            elif wl < orig / high:
                out.append(f)
            else:
                sm = (orig / wl - low) / (high - low)
                out.append((1 - sm) * f / factor + sm * f)
        return torch.tensor(out, dtype=torch.float64), 1.0
    if kind == "yarn":
        for k in ("original_max_position_embeddings", "mscale", "mscale_all_dim", "truncate"):
            if rs.get(k) is not None:
                sys.exit("yarn with %s differs between transformers versions: not in the reference" % k)
        bf, bs = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1
        cd = lambda r: d * math.log(max_pos / (r * 2 * math.pi)) / (2 * math.log(theta))
        lo, hi = max(math.floor(cd(bf)), 0), min(math.ceil(cd(bs)), d - 1)
        if lo == hi:
            hi += 0.001
        e = 1 - ((i - lo) / (hi - lo)).clamp(0, 1)
        inv = (default / factor) * (1 - e) + default * e
        af = rs.get("attention_factor")
        return inv, (0.1 * math.log(factor) + 1.0) if af is None else float(af)
    sys.exit("rope_type %r is not implemented in the reference" % kind)


def load_hf(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    mt = cfg["model_type"]
    if mt not in ("llama", "mistral", "qwen2", "qwen3"):
        sys.exit("model_type %r is not implemented in the reference" % mt)
    idx = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    w = {}
    for fn in files:
        w.update(read_safetensors(os.path.join(folder, fn)))
    H, KV = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    hd = cfg.get("head_dim") or (128 if mt == "qwen3" else cfg["hidden_size"] // H)
    rp = cfg.get("rope_parameters") or {}
    m = dict(dim=cfg["hidden_size"], n_layers=cfg["num_hidden_layers"], n_heads=H, n_kv_heads=KV,
             head_dim=hd, vocab=cfg["vocab_size"], eps=cfg.get("rms_norm_eps", 1e-6),
             theta=cfg.get("rope_theta") or rp.get("rope_theta") or 10000.0,
             max_pos=cfg.get("max_position_embeddings", 2048), rope="half", bos=cfg.get("bos_token_id", 1),
             cfg=cfg)
    # Which optional tensors the architecture has, from the config alone.
    ab = bool(cfg.get("attention_bias", False))
    bias = {"q": mt == "qwen2" or (mt in ("llama", "qwen3") and ab),
            "o": mt in ("llama", "qwen3") and ab,
            "mlp": mt == "llama" and bool(cfg.get("mlp_bias", False))}
    qk_norm = mt == "qwen3"

    def need(name):
        if name not in w:
            sys.exit("%s: tensor %s missing (config implies it)" % (folder, name))
        return w[name]

    def opt(name, present):
        if not present:
            if name in w:
                sys.exit("%s: tensor %s present but the config implies none" % (folder, name))
            return None
        return need(name)
    p = "model.layers.%d."
    m["layers"] = []
    for i in range(m["n_layers"]):
        a, f = p % i + "self_attn.", p % i + "mlp."
        m["layers"].append({
            "attn_norm": need(p % i + "input_layernorm.weight"),
            "wq": need(a + "q_proj.weight"), "wk": need(a + "k_proj.weight"),
            "wv": need(a + "v_proj.weight"), "wo": need(a + "o_proj.weight"),
            "bq": opt(a + "q_proj.bias", bias["q"]), "bk": opt(a + "k_proj.bias", bias["q"]),
            "bv": opt(a + "v_proj.bias", bias["q"]), "bo": opt(a + "o_proj.bias", bias["o"]),
            "q_norm": opt(a + "q_norm.weight", qk_norm), "k_norm": opt(a + "k_norm.weight", qk_norm),
            "ffn_norm": need(p % i + "post_attention_layernorm.weight"),
            "w_gate": need(f + "gate_proj.weight"), "w_up": need(f + "up_proj.weight"),
            "w_down": need(f + "down_proj.weight"),
            "b_gate": opt(f + "gate_proj.bias", bias["mlp"]), "b_up": opt(f + "up_proj.bias", bias["mlp"]),
            "b_down": opt(f + "down_proj.bias", bias["mlp"])})
    m["embed"] = need("model.embed_tokens.weight")
    m["norm"] = need("model.norm.weight")
    tied = cfg.get("tie_word_embeddings", False)
    m["head"] = m["embed"] if tied else need("lm_head.weight")
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
                        bv=None, bo=None, q_norm=None, k_norm=None, ffn_norm=rms_ffn[i], w_gate=w1[i],
                        w_up=w3[i], w_down=w2[i], b_gate=None, b_up=None, b_down=None)
                   for i in range(L)]
    m["cfg"] = {}
    return m


def load_model(path, dtype=torch.float64):
    m = load_llama2c(path) if os.path.isfile(path) else load_hf(path)
    cast = lambda t: None if t is None else t.to(dtype).contiguous()
    m["layers"] = [{k: cast(v) for k, v in l.items()} for l in m["layers"]]
    m["norm"] = cast(m["norm"])
    # Embedding and head stay in their float32 form (exact for bf16 / f16 / f32 files): rows are
    # cast when looked up, the head in chunks (a 128k x 4096 head is 4 GB in float64).
    tied = m["head"] is m["embed"]
    m["embed"] = m["embed"].float().contiguous() if m["embed"].dtype != torch.float64 else m["embed"]
    m["head"] = m["embed"] if tied else (m["head"].float().contiguous() if m["head"].dtype != torch.float64 else m["head"])
    m["dtype"] = dtype
    return m

# ---------------------------------------------------------------- math
# Kept as module-level functions so bench_forward_torch.py can wrap them with timers.


def linear(x, w, b=None):
    y = x @ w.t()
    return y if b is None else y + b


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, hd, theta, dtype, cfg=None):
    """cos/sin of pos * inv_freq (rope_inv_freq: plain theta^(-2i/hd) or the config's scaling),
    computed in float64 and multiplied by the scaling's cos/sin factor; shape (T, hd/2)."""
    inv, scale = rope_inv_freq(cfg or {}, hd, theta, T)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return (ang.cos() * scale).to(dtype), (ang.sin() * scale).to(dtype)


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
    q = linear(h, l["wq"], l["bq"]).view(B, T, H, hd)
    k = linear(h, l["wk"], l["bk"]).view(B, T, KV, hd)
    if l.get("q_norm") is not None:  # Qwen3: RMSNorm over each head's head_dim, before RoPE
        q, k = rmsnorm(q, l["q_norm"], m["eps"]), rmsnorm(k, l["k_norm"], m["eps"])
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    v = linear(h, l["wv"], l["bv"]).view(B, T, KV, hd).transpose(1, 2)
    q, k = rope(q, cos, sin, m["rope"]), rope(k, cos, sin, m["rope"])
    a = attention(q, k, v).transpose(1, 2).reshape(B, T, H * hd)
    x = x + linear(a, l["wo"], l.get("bo"))
    h = rmsnorm(x, l["ffn_norm"], m["eps"])
    g = swiglu(linear(h, l["w_gate"], l.get("b_gate")), linear(h, l["w_up"], l.get("b_up")))
    return x + linear(g, l["w_down"], l.get("b_down"))


def head_logits(m, h):
    """h @ head^T in the model's dtype, the head cast in chunks of rows."""
    W = m["head"]
    if W.dtype == h.dtype:
        return h @ W.t()
    out = torch.empty(h.shape[:-1] + (W.shape[0],), dtype=h.dtype)
    for r in range(0, W.shape[0], 16384):
        out[..., r:r + 16384] = h @ W[r:r + 16384].to(h.dtype).t()
    return out


def forward(m, ids):
    """ids: (B, T) int64 tensor, positions 0..T-1. Returns logits (B, T, vocab)."""
    T = ids.shape[1]
    cos, sin = rope_tables(T, m["head_dim"], m["theta"], m["dtype"], m.get("cfg"))
    x = m["embed"][ids].to(m["dtype"])
    for l in m["layers"]:
        x = block(m, l, x, cos, sin)
    return head_logits(m, rmsnorm(x, m["norm"], m["eps"]))

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
