#!/usr/bin/python3
"""Independent float64 reference of the quality statistics against the original (issue 17).

Runs the original model and one or more quantized versions of it on the same windows of a text
(the perplexity protocol: non-overlapping windows of seqlen tokens, tail dropped, every
prediction of a window counted) and computes, per quantized model, what `gptqw` computes in
core/pipeline/divergence_summary.h, written here from the definitions of llama.cpp's
`llama-perplexity --kl-divergence` (tools/perplexity/perplexity.cpp) and exllamav3's
eval/model_diff.py, not from the C++ code:

  per position  log p = log_softmax(original logits), log q = log_softmax(quantized logits),
                in float64 over the whole vocabulary; KLD = sum p (log p - log q); NLLs
                -log p_c, -log q_c of the correct next token c; dp = q_c - p_c; top-K lists by
                a stable descending sort (equal logits: lower id first), agreement at K when
                the first K ranks are equal; the original's top probability
  statistics    means with standard errors s / sqrt(n) (numpy's sample standard deviation);
                PPL = exp(mean NLL) +- PPL se; ln(PPL_q / PPL_orig) +- sqrt(se_q^2 + se_o^2 -
                2 cov), cov = numpy's sample covariance / n; RMS dp = sqrt(mean dp^2) +- se(dp^2)
                / (2 RMS); proportions +- sqrt(p (1 - p) / (n - 1)); percentiles by numpy's
                linear interpolation; KLD and PPL by position bucket, KLD by the original's
                confidence (exllamav3's buckets)

Quantized weights come from GPTQ checkpoints that `gptqw quantize --method gptq|rtn --out DIR`
exported (qweight / qzeros / scales / g_idx, dequantized by quantize_reference.py's
export_layer and dequantize: W = scale * (q - zero) in float32, as a checkpoint loader does).
By default a quantized model is the original with each exported quantized layer replaced
(what `gptqw` evaluates in memory after a run: the layers it kept in fp16 and the embeddings
stay the original's fp32); --whole-checkpoint takes every tensor from the export instead (its
embeddings, norms and kept layers are F16), i.e. the checkpoint as loaded.

  divergence_reference.py --model DIR --ids IDS.json --quantized NAME=EXPORT_DIR [...]
                          [--seqlen 512] [--max-windows N] [--buckets 0,128,512,2048]
                          [--whole-checkpoint] [--dtype float64|float32] [--json OUT]

IDS.json: `gptqw tokenize --tokenizer MODEL --text FILE --json` (BOS included). --dtype sets the
forward pass's precision; the statistics are float64 either way.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import llama_reference as lr  # noqa: E402
import quantize_reference as qr  # noqa: E402

TOP = 5
CONFIDENCE = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 0.95), (0.95, 1.0)]
PCT = [("max", 1.0), ("p99_9", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("p75", 0.75),
       ("median", 0.5), ("p25", 0.25), ("p10", 0.10), ("p5", 0.05), ("p1", 0.01), ("p0_1", 0.001),
       ("min", 0.0)]


def quantized_model(m, folder, whole, dtype):
    """The original model dict m with the export's weights: its quantized layers (dequantized),
    and with `whole` also every other tensor it stores."""
    t, cfg = qr.read_export(folder)
    f32 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))
    q = dict(m)
    q["layers"] = [dict(l) for l in m["layers"]]
    replaced = 0
    for b, layer in enumerate(q["layers"]):
        for mod, key in qr.KEYS.items():
            name = "model.layers.%d.%s" % (b, mod)
            N, K = m["layers"][b][key].shape
            if name + ".qweight" in t:
                layer[key] = qr.dequantize(qr.export_layer(t, cfg, name, N, K), torch.float32).to(dtype).contiguous()
                replaced += 1
            elif whole:
                layer[key] = f32(t[name + ".weight"]).to(dtype).contiguous()
        if whole:
            for key, name in (("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm")):
                layer[key] = f32(t["model.layers.%d.%s.weight" % (b, name)]).to(dtype)
    if whole:
        q["embed"] = f32(t["model.embed_tokens.weight"])
        q["norm"] = f32(t["model.norm.weight"]).to(dtype)
        q["head"] = q["embed"] if m["head"] is m["embed"] else f32(t["lm_head.weight"])
    if replaced == 0:
        sys.exit("%s: no quantized layer (qweight) in the export" % folder)
    return q, replaced


def compare_window(lo, lq, target):
    """Per-position values of one window: logits [T, V] of both models (float64)."""
    lp, lqs = torch.log_softmax(lo, -1), torch.log_softmax(lq, -1)
    p = lp.exp()
    kld = torch.where(p > 0, p * (lp - lqs), torch.zeros_like(p)).sum(-1)
    nll_o = -lp.gather(-1, target[:, None])[:, 0]
    nll_q = -lqs.gather(-1, target[:, None])[:, 0]
    dp = (-nll_q).exp() - (-nll_o).exp()
    top_o = torch.sort(-lo, dim=-1, stable=True).indices[:, :TOP]
    top_q = torch.sort(-lq, dim=-1, stable=True).indices[:, :TOP]
    agree = torch.stack([(top_o[:, :k] == top_q[:, :k]).all(-1) for k in range(1, TOP + 1)], -1)
    conf = p.max(-1).values
    return dict(kld=kld, nll_o=nll_o, nll_q=nll_q, dp=dp, agree=agree, conf=conf)


def mean_se(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def pair(a, b, kld):
    """PPL of both models, ln ratio (llama.cpp's form with the covariance) and mean KLD."""
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    cov = float(np.cov(a, b)[0, 1]) / len(a) if len(a) > 1 else 0.0
    mk, sk = mean_se(kld)
    return dict(ppl_orig=[math.exp(ma), math.exp(ma) * sa], ppl_quant=[math.exp(mb), math.exp(mb) * sb],
                ln_ppl_ratio=[mb - ma, math.sqrt(max(0.0, sa * sa + sb * sb - 2 * cov))], kld=[mk, sk],
                cov=cov, se_orig=sa, se_quant=sb)


def summarize(v, positions, buckets):
    n = len(v["kld"])
    kld, dp, a, b = v["kld"], v["dp"], v["nll_o"], v["nll_q"]
    s = dict(tokens=n, **pair(a, b, kld))
    s["ppl_ratio"] = [math.exp(s["ln_ppl_ratio"][0]), math.exp(s["ln_ppl_ratio"][0]) * s["ln_ppl_ratio"][1]]
    s["nll_correlation"] = s["cov"] / (s["se_orig"] * s["se_quant"])
    s["kld_pct"] = {k: float(np.percentile(kld, 100 * f)) for k, f in PCT}
    s["dp"] = list(mean_se(dp))
    s["dp_pct"] = {k: float(np.percentile(dp, 100 * f)) for k, f in PCT}
    m2, s2 = mean_se(dp * dp)
    s["dp_rms"] = [math.sqrt(m2), s2 / (2 * math.sqrt(m2))]
    counts = v["agree"].sum(0)
    s["top_agree_count"] = [int(c) for c in counts]
    s["top_agreement"] = [[c / n, math.sqrt((c / n) * (1 - c / n) / (n - 1))] for c in counts]
    s["by_position"] = []
    for i, lo in enumerate(buckets):
        hi = buckets[i + 1] if i + 1 < len(buckets) else None
        sel = (positions >= lo) & (positions < hi if hi is not None else True)
        e = pair(a[sel], b[sel], kld[sel]) if sel.sum() > 1 else {}
        s["by_position"].append(dict(first=lo, end=hi, tokens=int(sel.sum()),
                                     **{k: e[k] for k in ("ppl_orig", "ppl_quant", "ln_ppl_ratio", "kld") if k in e}))
    s["by_confidence"] = []
    for lo, hi in CONFIDENCE:
        sel = (v["conf"] >= lo) & ((v["conf"] < hi) | ((hi == 1.0) & (v["conf"] <= hi)))
        k = kld[sel]
        s["by_confidence"].append(dict(low=lo, high=hi, tokens=int(sel.sum()), share=float(sel.sum()) / n,
                                       kld_mean=float(k.mean()) if len(k) else 0.0,
                                       kld_median=float(np.median(k)) if len(k) else 0.0))
    for k in ("cov", "se_orig", "se_quant"):
        del s[k]
    return s


def print_summary(name, s, ppl_o, ppl_q):
    """llama.cpp's layout (kl_divergence()'s final print)."""
    pct = lambda v: 100.0 * v
    print("====== %s: %d positions ======" % (name, s["tokens"]))
    print("Perplexity protocol (mean of window means): original %.10f  %s %.10f" % (ppl_o, name, ppl_q))
    print("Mean PPL(Q)                   : %10.6f ± %10.6f" % tuple(s["ppl_quant"]))
    print("Mean PPL(base)                : %10.6f ± %10.6f" % tuple(s["ppl_orig"]))
    print("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%" % pct(s["nll_correlation"]))
    print("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f" % tuple(s["ln_ppl_ratio"]))
    print("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f" % tuple(s["ppl_ratio"]))
    print("Mean    KLD: %10.6f ± %10.6f" % tuple(s["kld"]))
    for k, label in (("max", "Maximum"), ("p99_9", "99.9%  "), ("p99", "99.0%  "), ("p95", "95.0%  "),
                     ("p90", "90.0%  "), ("median", "Median "), ("min", "Minimum")):
        print("%s KLD: %10.6f" % (label, s["kld_pct"][k]))
    print("Mean    Δp: %6.3f ± %5.3f %%" % (pct(s["dp"][0]), pct(s["dp"][1])))
    print("RMS Δp    : %6.3f ± %5.3f %%" % (pct(s["dp_rms"][0]), pct(s["dp_rms"][1])))
    for k in range(TOP):
        print("Top-%d agreement: %6.3f ± %5.3f %% (%d)" % (k + 1, pct(s["top_agreement"][k][0]),
                                                         pct(s["top_agreement"][k][1]), s["top_agree_count"][k]))
    for b in s["by_position"]:
        if "kld" in b:
            print("positions [%d, %s): %d  PPL %.4f -> %.4f  KLD %.6f ± %.6f" % (
                b["first"], b["end"] if b["end"] is not None else "...", b["tokens"], b["ppl_orig"][0],
                b["ppl_quant"][0], b["kld"][0], b["kld"][1]))
    for b in s["by_confidence"]:
        print("original top p [%.2f, %.2f%s: %5.1f%%  KLD mean %.6f  median %.6f" % (
            b["low"], b["high"], "]" if b["high"] == 1.0 else ")", 100 * b["share"], b["kld_mean"], b["kld_median"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the original: HF folder")
    ap.add_argument("--ids", required=True, help="gptqw tokenize --json of the text")
    ap.add_argument("--quantized", action="append", required=True, help="NAME=EXPORT_DIR, repeatable")
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--max-windows", type=int)
    ap.add_argument("--buckets", default="0,128,512,2048")
    ap.add_argument("--whole-checkpoint", action="store_true")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    m = lr.load_model(a.model, dtype)
    models = []
    for spec in a.quantized:
        name, folder = spec.split("=", 1)
        q, replaced = quantized_model(m, folder, a.whole_checkpoint, dtype)
        models.append((name, folder, q, replaced))
    ids = lr.read_ids(a.ids)
    n = len(ids) // a.seqlen
    if a.max_windows:
        n = min(n, a.max_windows)
    if n == 0:
        sys.exit("text shorter than one window")
    buckets = [int(x) for x in a.buckets.split(",")]
    t = torch.tensor(ids[:n * a.seqlen], dtype=torch.int64).view(n, a.seqlen)
    keys = ("kld", "nll_o", "nll_q", "dp", "agree", "conf")
    per = {name: {k: [] for k in keys} for name, *_ in models}
    window_nll = {name: [] for name in ["original"] + [mm[0] for mm in models]}
    with torch.inference_mode():
        for w in range(n):
            win = t[w:w + 1]
            lo = lr.forward(m, win)[0, :-1].to(torch.float64)
            target = win[0, 1:]
            window_nll["original"].append(float(-torch.log_softmax(lo, -1).gather(-1, target[:, None]).mean()))
            for name, _, q, _ in models:
                lq = lr.forward(q, win)[0, :-1].to(torch.float64)
                c = compare_window(lo, lq, target)
                for k in keys:
                    per[name][k].append(c[k].numpy())
                window_nll[name].append(float(c["nll_q"].mean()))
            if (w + 1) % 16 == 0:
                print("  window %d/%d" % (w + 1, n), file=sys.stderr)
    positions = np.tile(np.arange(a.seqlen - 1), n)
    ppl = {k: math.exp(float(np.mean(v))) for k, v in window_nll.items()}
    out = dict(model=os.path.abspath(a.model), seqlen=a.seqlen, windows=n, tokens=len(ids), dtype=a.dtype,
               whole_checkpoint=a.whole_checkpoint, buckets=buckets, ppl=ppl, models={})
    for name, folder, _, replaced in models:
        v = {k: np.concatenate(per[name][k]) for k in keys}
        s = summarize(v, positions, buckets)
        out["models"][name] = dict(export=os.path.abspath(folder), layers_replaced=replaced, **s)
        print_summary(name, s, ppl["original"], ppl[name])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
