#!/usr/bin/python3
"""Independent whole-model GPTQ and RTN in PyTorch, to cross-check `gptqw compare`.

Reruns the sequential quantization of a `gptqw quantize/compare --report` run from exactly the
calibration windows its report records, transcribing IST-DASLab gptq (llama.py's sequential
driver, gptq.py's add_batch/fasterquant, quant.py's Quantizer) as docs/gptq-spec.md describes
it, and evaluates the perplexity of the original, RTN and GPTQ models. The per-layer math is
gptq_reference.py's (imported, not rewritten); the forward pass is llama_reference.py's.

  quantize_reference.py --model DIR --report REPORT.json --calib-ids CALIB.json
                        --eval-ids EVAL.json [--eval-seqlen N] [--eval-max-windows N]
                        [--dtype float32|float64] [--methods gptq,rtn] [--json OUT.json]
                        [--dump-codes DIR] [--compare-export EXPORT_DIR [--eval-export]]
                        [--propagate q|stored|export] [--eval-scales float16|float32]
                        [--no-eval] [--threads 1]

CALIB.json / EVAL.json: `gptqw tokenize --tokenizer MODEL --text FILE --json` (BOS included,
which is how the report's calibration offsets index the text). Settings (bits, group size,
sym, mse, act-order, static groups, damping, block size, true-sequential, nsamples, seqlen,
offsets) all come from the report. Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

# ---------------------------------------------------------------- arguments (before torch loads)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face folder (or llama2.c .bin) the report was made from")
    ap.add_argument("--report", required=True, help="report JSON of `gptqw quantize/compare --report`")
    ap.add_argument("--calib-ids", required=True, help="token ids of the calibration text (gptqw tokenize --json)")
    ap.add_argument("--eval-ids", help="token ids of the evaluation text; omit together with --no-eval")
    ap.add_argument("--eval-seqlen", type=int, help="default: the report's perplexity.seqlen, else the calibration seqlen")
    ap.add_argument("--eval-max-windows", type=int, help="default: the report's window count where it is smaller than the text's")
    ap.add_argument("--eval-batch", type=int, default=8, help="windows per forward in the evaluation")
    ap.add_argument("--no-eval", action="store_true", help="quantize only (codes, losses, export comparison)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="forward-pass dtype (Hessians and fasterquant are fp32 either way, as upstream)")
    ap.add_argument("--methods", help="subset of the report's methods, e.g. gptq or gptq,rtn")
    ap.add_argument("--eval-scales", choices=["float16", "float32"], default="float16",
                    help="scales used when evaluating quantized models: float16 = as a checkpoint stores them "
                         "(what gptqw evaluates), float32 = the quantizer's own")
    ap.add_argument("--propagate", choices=["q", "stored", "export"], default="q",
                    help="weights a quantized layer contributes to later Hessians and the next block's inputs: "
                         "q = fasterquant's Q in fp32, as upstream; stored = dequantized with float16 scales; "
                         "export = the --compare-export checkpoint's codes (diagnostic: every layer then starts "
                         "from the C++ run's upstream, so code differences are local, not inherited)")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--dump-codes", metavar="DIR", help="write per layer codes/scales/zeros/g_idx/perm (.npy)")
    ap.add_argument("--compare-export", metavar="DIR",
                    help="checkpoint of `gptqw ... --out DIR` (GPTQ, or RTN with --method rtn) to diff codes against")
    ap.add_argument("--eval-export", action="store_true", help="also evaluate the --compare-export checkpoint's weights")
    ap.add_argument("--tie-eps", type=float, default=1e-3,
                    help="a first difference whose x/scale lies within this of a .5 tie counts as a tie")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and OpenBLAS threads; 1 is fastest for small models on a busy machine")
    ap.add_argument("--no-tie-snap", action="store_true",
                    help="round quotients with plain torch.round, as upstream does, instead of the "
                         "engine's rule (gptq_reference.round_quotient)")
    ap.add_argument("--openblas-coretype", default="auto",
                    help="see bench_forward_torch.py; 'none' keeps OpenBLAS's own (slow, SSE3) choice here")
    a = ap.parse_args()
    if not a.no_eval and not a.eval_ids:
        ap.error("--eval-ids is required unless --no-eval")
    if (a.eval_export or a.propagate == "export") and not a.compare_export:
        ap.error("--eval-export and --propagate export need --compare-export")
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # OpenBLAS fixes its thread count and kernels when it loads (see bench_forward_torch.py).
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    if ARGS.openblas_coretype == "auto" and "OPENBLAS_CORETYPE" not in os.environ:
        flags = open("/proc/cpuinfo").read()
        ct = "SkylakeX" if " avx512f" in flags else "Haswell" if " avx2" in flags else None
        if ct:
            os.environ["OPENBLAS_CORETYPE"] = ct
    elif ARGS.openblas_coretype not in ("auto", "none"):
        os.environ["OPENBLAS_CORETYPE"] = ARGS.openblas_coretype

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import gptq_reference as gr  # noqa: E402
import llama_reference as lr  # noqa: E402

# HF module name -> llama_reference's key in a layer dict
KEYS = {"self_attn.q_proj": "wq", "self_attn.k_proj": "wk", "self_attn.v_proj": "wv",
        "self_attn.o_proj": "wo", "mlp.gate_proj": "w_gate", "mlp.up_proj": "w_up",
        "mlp.down_proj": "w_down"}
# llama.py's true-sequential order: each group sees the earlier groups already quantized.
SEQUENTIAL = [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"],
              ["mlp.gate_proj", "mlp.up_proj"], ["mlp.down_proj"]]
LinAlgError = getattr(torch.linalg, "LinAlgError", RuntimeError)


# ---------------------------------------------------------------- capturing layer inputs

class capture_inputs:
    """Route llama_reference.linear through a hook that sees the input of the watched weights.

    block() looks `linear` up in its module at call time, so swapping the module attribute is
    enough; weights are recognised by identity, which is what a forward hook on an nn.Linear
    amounts to in llama.py."""

    def __init__(self, watch, callback):
        self.watch, self.callback = watch, callback  # watch: id(weight) -> module name

    def __enter__(self):
        self.orig = lr.linear

        def hooked(x, w, b=None):
            name = self.watch.get(id(w))
            if name is not None:
                self.callback(name, x)
            return self.orig(x, w, b)
        lr.linear = hooked
        return self

    def __exit__(self, *exc):
        lr.linear = self.orig
        return False


# ---------------------------------------------------------------- quantization of one layer

def rtn(W, s):
    """Round to nearest: the quantizer on the original weights, group by group in column order.

    Uses no Hessian, so it neither zeroes dead inputs nor follows act-order (llama.py's
    --nearest is per row only; per group is the same quantizer applied to each column slice)."""
    W = W.float()
    K = W.shape[1]
    gs = K if s["group_size"] == -1 else s["group_size"]
    Q, codes, ratio = torch.zeros_like(W), torch.zeros_like(W), torch.zeros_like(W)
    scales, zeros = [], []
    for c0 in range(0, K, gs):
        qz = gr.Quantizer(s["bits"], sym=s["sym"], mse=s["mse"])
        qz.find_params(W[:, c0:c0 + gs])
        q, c = gr.quantize_codes(W[:, c0:c0 + gs], qz.scale, qz.zero, qz.maxq)
        Q[:, c0:c0 + gs], codes[:, c0:c0 + gs] = q, c
        ratio[:, c0:c0 + gs] = W[:, c0:c0 + gs] / qz.scale  # for the tie analysis only
        scales.append(qz.scale.flatten())
        zeros.append(qz.zero.flatten())
    g_idx = torch.arange(K, dtype=torch.int32) // gs
    return dict(Q=Q, codes=codes.to(torch.uint8), scales=torch.stack(scales), zeros=torch.stack(zeros),
                g_idx=g_idx, perm=None, order=torch.arange(K), ratio=ratio)


def gptq(W, H, s):
    """fasterquant, with GPTQModel's answer to a failed Cholesky: raise percdamp by 0.01 and
    retry while it stays below 1; only then give up and use RTN (GPTQModel would raise)."""
    raises = 0
    while True:
        percdamp = s["damp_fraction"] + 0.01 * raises
        if percdamp >= 1:
            r = rtn(W, s)
            r.update(loss=float("nan"), fell_back_to_rtn=True, damp_fraction=None, damp_abs=None,
                     damp_raises=raises)
            return r
        try:
            r = gr.fasterquant(W, H, s["bits"], s["sym"], s["mse"], blocksize=s["block_size"],
                               percdamp=percdamp, groupsize=s["group_size"],
                               actorder=s["act_order"], static_groups=s["static_groups"])
            break
        except LinAlgError:
            raises += 1
    d = torch.diag(H).clone()
    d[d == 0] = 1  # fasterquant's dead-input fix happens before the damping is computed
    r.update(fell_back_to_rtn=False, damp_fraction=percdamp, damp_abs=(percdamp * d.mean()).item(),
             damp_raises=raises)
    return r


def rel_error(W, Q, H):
    """||W X - Q X||^2 / ||W X||^2 on the calibration inputs, exactly, via H = (2/n) X X^T."""
    W, D, H = W.double(), (W.double() - Q.double()), H.double()
    return (torch.trace(D @ H @ D.t()) / torch.trace(W @ H @ W.t())).item()


def dequantize(r, scale_dtype):
    """W[n, k] = scale[g_idx[k], n] * (q[n, k] - zero[g_idx[k], n]), computed in fp32."""
    g = r["g_idx"].long()
    S = r["scales"].to(scale_dtype).float()[g].t()
    Z = r["zeros"].float()[g].t()
    return S * (r["codes"].float() - Z)


# ---------------------------------------------------------------- the sequential driver

def quantize_model(m, windows, s, methods, quantized, propagate, follow=None, keep_ratio=False):
    """llama.py's llama_sequential: inputs of block 0 from the embeddings; per block, Hessians
    group by group (true-sequential) from runs of the block with earlier groups replaced by
    their GPTQ weights; then the quantized block's outputs become the next block's inputs.
    RTN is computed alongside from the original weights. Returns per-layer results (codes,
    scales, zeros, g_idx, perm; x/scale only with keep_ratio: it is as large as the weights)."""
    n, T = windows.shape
    cos, sin = lr.rope_tables(T, m["head_dim"], m["theta"], m["dtype"])
    inps = m["embed"][windows]  # [n, T, dim]
    groups = SEQUENTIAL if s["true_sequential"] else [sum(SEQUENTIAL, [])]
    results = []
    for b in range(m["n_layers"]):
        layer = dict(m["layers"][b])  # the GPTQ model's block, filled in group by group
        for group in groups:
            todo = [mod for mod in group if (b, mod) in quantized]
            if not todo:
                continue
            K = {mod: layer[KEYS[mod]].shape[1] for mod in todo}
            state = {mod: (torch.zeros(K[mod], K[mod]), 0) for mod in todo}

            def add(mod, x):
                # one add_batch per sequence, as llama.py feeds the block one sample at a time
                for j in range(x.shape[0]):
                    state[mod] = gr.add_batch(state[mod], x[j].reshape(-1, x.shape[-1]), 1)
            with torch.inference_mode(), capture_inputs({id(layer[KEYS[mod]]): mod for mod in todo}, add):
                for j in range(n):
                    lr.block(m, layer, inps[j:j + 1], cos, sin)
            for mod in todo:
                W = m["layers"][b][KEYS[mod]]
                H = state[mod][0]
                res = dict(block=b, module=mod, name="model.layers.%d.%s" % (b, mod),
                           shape=list(W.shape), H_diag=torch.diag(H).clone(), nsamples=state[mod][1])
                if "gptq" in methods:
                    t0 = time.perf_counter()
                    g = gptq(W, H, s)
                    g["seconds"] = time.perf_counter() - t0
                    g["rel_error"] = rel_error(W, g["Q"], H)
                    res["gptq"] = g
                    # what later groups and the next block see
                    Wq = {"q": lambda: g["Q"], "stored": lambda: dequantize(g, torch.float16),
                          "export": lambda: follow(res["name"], g)}[propagate]()
                    layer[KEYS[mod]] = Wq.to(m["dtype"]).contiguous()
                    del g["Q"]
                if "rtn" in methods:
                    t0 = time.perf_counter()
                    r = rtn(W, s)
                    r["seconds"] = time.perf_counter() - t0
                    r["rel_error"] = rel_error(W, r["Q"], H)  # on the GPTQ pipeline's inputs
                    del r["Q"]
                    res["rtn"] = r
                for q in (res.get("gptq"), res.get("rtn")):
                    if q is not None and not keep_ratio:
                        q.pop("ratio", None)
                results.append(res)
                print("  block %d %-18s gptq loss %-12s rel %-12s rtn rel %s" % (
                    b, mod, "%.6g" % res["gptq"]["loss"] if "gptq" in res else "-",
                    "%.6g" % res["gptq"]["rel_error"] if "gptq" in res else "-",
                    "%.6g" % res["rtn"]["rel_error"] if "rtn" in res else "-"), file=sys.stderr)
        with torch.inference_mode():
            inps = torch.cat([lr.block(m, layer, inps[j:j + 1], cos, sin) for j in range(n)])
    return results


def model_with(m, results, method, scale_dtype):
    """A copy of the model whose quantized linears are the method's dequantized weights."""
    q = dict(m)
    q["layers"] = [dict(l) for l in m["layers"]]
    for r in results:
        if method in r:
            q["layers"][r["block"]][KEYS[r["module"]]] = dequantize(r[method], scale_dtype).to(m["dtype"]).contiguous()
    return q


# ---------------------------------------------------------------- the exported checkpoint

_ST = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}


def read_safetensors_raw(path):
    """Like llama_reference.read_safetensors, but keeps the stored dtype (packed I32 words
    would not survive a conversion to float)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name != "__metadata__":
            lo, hi = info["data_offsets"]
            out[name] = np.frombuffer(data[lo:hi], dtype=_ST[info["dtype"]]).reshape(info["shape"])
    return out


def read_export(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else [f for f in os.listdir(folder) if f.endswith(".safetensors")]
    t = {}
    for f in files:
        t.update(read_safetensors_raw(os.path.join(folder, f)))
    qc = os.path.join(folder, "quantize_config.json")
    cfg = json.load(open(qc)) if os.path.exists(qc) else \
        json.load(open(os.path.join(folder, "config.json")))["quantization_config"]
    # gptqw writes its run report beside the weights; `--method rtn` exports hold RTN's codes
    rp = os.path.join(folder, "quantization_report.json")
    methods = json.load(open(rp)).get("settings", {}).get("methods", []) if os.path.exists(rp) else []
    cfg = dict(cfg, _method="rtn" if methods == ["rtn"] else "gptq")
    return t, cfg


def unpack(words, bits, count):
    """Codes packed lowest bits first along axis 0 of `words` (int32 [R, C]) -> [count, C].

    All four widths are one little-endian bit stream per column: 2/4/8 bits never straddle a
    word, and the 3-bit layout (10 codes, 1 split, 10, 1 split, 10 per 3 words) is exactly the
    stream cut into 32-bit words."""
    R, C = words.shape
    by = np.ascontiguousarray(words.astype("<u4")).view(np.uint8).reshape(R, C, 4).transpose(1, 0, 2).reshape(C, R * 4)
    bitstream = np.unpackbits(by, axis=1, bitorder="little")[:, :count * bits]
    vals = bitstream.reshape(C, count, bits).astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))
    return vals.T  # [count, C]


def export_layer(t, cfg, name, N, K):
    bits = cfg["bits"]
    gs = cfg["group_size"] if cfg["group_size"] != -1 else K
    G = (K + gs - 1) // gs
    codes = unpack(t[name + ".qweight"], bits, K).T  # [N, K]
    zeros = unpack(t[name + ".qzeros"].T, bits, N).T  # [G, N]: the stream runs along N
    assert zeros.shape[0] == G, name
    form = cfg.get("checkpoint_format", "gptq")
    if form == "gptq":
        zeros = zeros + 1  # v1 stores zero - 1
    elif form != "gptq_v2":
        sys.exit("unknown checkpoint_format %r" % form)
    return dict(codes=torch.from_numpy(codes.astype(np.uint8)), zeros=torch.from_numpy(zeros.astype(np.float32)),
                scales=torch.from_numpy(t[name + ".scales"].astype(np.float32)),
                g_idx=torch.from_numpy(t[name + ".g_idx"].astype(np.int32)))


def export_as_computed(exp, ref):
    """The export's weights as its producer most likely held them in fp32 before storing: its
    codes and zeros, with the reference's fp32 scale wherever that rounds to the stored fp16
    scale (so that where both agree this is exactly fasterquant's Q), the stored one elsewhere."""
    s16 = exp["scales"]
    ref32 = ref["scales"] if ref["scales"].shape == s16.shape else s16
    scales = torch.where(ref32.to(torch.float16).float() == s16, ref32, s16)
    return dequantize(dict(exp, scales=scales), torch.float32)


def tie_distance(x):
    """How far x (= w / scale) is from a rounding tie k + .5, in quantization steps."""
    if math.isnan(x):
        return x
    return abs(abs(x - math.floor(x)) - 0.5)


def compare_layer(ref, exp, tie_eps):
    """Codes that differ; for each differing row its first difference in quantization order
    (everything after it in that row can follow from it through the error feedback); and how
    the export rounded where the reference met an exact tie (x/scale = k + .5 in fp32, which
    round-half-to-even resolves to the even k). Such ties are common: where a group's grid is
    found on the very values being quantized (column 0, and the first column of every later
    lazy block when it starts a group), a symmetric grid puts its extreme at x/scale = -maxq/2
    exactly (-7.5 at 4 bits, -3.5 at 3); at +maxq/2 the clamp hides the rounding."""
    order = ref["order"]
    diff = (ref["codes"] != exp["codes"])[:, order]  # columns in quantization order
    rows = diff.any(1).nonzero().flatten().tolist()
    firsts = []
    for r in rows:
        j = int(diff[r].nonzero()[0])
        k = int(order[j])
        x = ref["ratio"][r, k].item() if ref.get("ratio") is not None else float("nan")
        firsts.append(dict(row=r, position=j, column=k, ref_code=int(ref["codes"][r, k]),
                           export_code=int(exp["codes"][r, k]), ref_x_over_scale=x,
                           tie_distance=tie_distance(x)))
    firsts.sort(key=lambda f: (f["position"], f["row"]))
    ratio = ref["ratio"]
    tie = (ratio - torch.floor(ratio)) == 0.5
    up = tie & (exp["codes"].int() == ref["codes"].int() + 1)
    down = tie & (exp["codes"].int() == ref["codes"].int() - 1)
    ref_s16 = ref["scales"].to(torch.float16).float()
    return dict(codes_differ=int(diff.sum()), codes=diff.numel(), rows_differ=len(rows), rows=diff.shape[0],
                first=firsts[0] if firsts else None,
                first_per_row_near_tie=sum(f["tie_distance"] < tie_eps for f in firsts),
                max_first_tie_distance=max((f["tie_distance"] for f in firsts), default=0.0),
                exact_ties=int(tie.sum()), exact_ties_export_up=int(up.sum()),
                exact_ties_export_down=int(down.sum()),
                exact_tie_list=[dict(row=r, column=k, x_over_scale=ratio[r, k].item(), ref_code=int(ref["codes"][r, k]),
                                     export_code=int(exp["codes"][r, k])) for r, k in tie.nonzero().tolist()[:50]],
                scales_differ=int((ref_s16 != exp["scales"]).sum()) if ref_s16.shape == exp["scales"].shape else "shape",
                zeros_differ=int((ref["zeros"] != exp["zeros"]).sum()) if ref["zeros"].shape == exp["zeros"].shape else "shape",
                g_idx_same=bool(torch.equal(ref["g_idx"], exp["g_idx"])))


# ---------------------------------------------------------------- main

def rel(a, b):
    return None if a is None or b is None else abs(a - b) / abs(b)


def fmt(v, f):
    return "-" if v is None else f % v


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    gr.TIE_SNAP = not a.no_tie_snap
    t_start = time.perf_counter()
    rep = json.load(open(a.report))
    s, cal = rep["settings"], rep["calibration"]
    # Reports written before the rename call the damping fraction damp_percent.
    s.setdefault("damp_fraction", s.get("damp_percent"))
    methods = [x for x in (a.methods.split(",") if a.methods else s["methods"]) if x in s["methods"]]
    calib_ids = lr.read_ids(a.calib_ids)
    if len(calib_ids) != cal["text_tokens"]:
        sys.exit("calibration ids: %d tokens, the report's text had %d (tokenized differently?)"
                 % (len(calib_ids), cal["text_tokens"]))
    offsets, seqlen = cal["offsets"], cal["seqlen"]
    if len(offsets) != cal["nsamples"]:
        sys.exit("report lists %d offsets for nsamples %d" % (len(offsets), cal["nsamples"]))
    if any(o < 0 or o + seqlen > len(calib_ids) for o in offsets):
        sys.exit("a calibration offset runs past the calibration ids")
    windows = torch.tensor([calib_ids[o:o + seqlen] for o in offsets], dtype=torch.int64)
    # Only what the report quantized (a --skip-modules run leaves modules out of `layers`).
    quantized = {(l["block"], l["module"]) for l in rep["layers"]}
    cpp_layers = {(l["block"], l["module"]): l for l in rep["layers"]}

    dtype = getattr(torch, a.dtype)
    m = lr.load_model(a.model, dtype)
    t_load = time.perf_counter() - t_start
    print("%s: %d blocks; %d windows x %d tokens; %s bits %d, group %d, %s%s%s%s, damp %g, block %d, "
          "%s; forward in %s" % (a.model, m["n_layers"], len(offsets), seqlen, "+".join(methods), s["bits"],
                                 s["group_size"], "sym" if s["sym"] else "asym", ", act-order" if s["act_order"] else "",
                                 ", static groups" if s["static_groups"] else "", ", mse" if s["mse"] else "",
                                 s["damp_fraction"], s["block_size"],
                                 "true-sequential" if s["true_sequential"] else "not true-sequential", a.dtype),
          file=sys.stderr)

    exp_t = exp_cfg = None
    if a.compare_export:
        exp_t, exp_cfg = read_export(a.compare_export)
        if exp_cfg["_method"] not in methods:
            sys.exit("the export holds %s codes; run that method too" % exp_cfg["_method"])
        if a.propagate == "export" and exp_cfg["_method"] != "gptq":
            sys.exit("--propagate export needs a GPTQ export")
        for key, want in (("bits", s["bits"]), ("group_size", s["group_size"]), ("sym", s["sym"]),
                          ("desc_act", s["act_order"])):
            if exp_cfg.get(key) != want:
                print("warning: export %s = %r, report %r" % (key, exp_cfg.get(key), want), file=sys.stderr)

    def follow(name, ref):
        N, K = ref["codes"].shape
        return export_as_computed(export_layer(exp_t, exp_cfg, name, N, K), ref)

    t0 = time.perf_counter()
    results = quantize_model(m, windows, s, methods, quantized, a.propagate, follow,
                             keep_ratio=bool(a.compare_export))
    t_quant = time.perf_counter() - t0

    out = dict(tool="quantize_reference.py", model=a.model, report=os.path.abspath(a.report), dtype=a.dtype,
               eval_scales=a.eval_scales, propagate=a.propagate, methods=methods, settings=s,
               calibration=dict(nsamples=len(offsets), seqlen=seqlen, text_tokens=len(calib_ids)),
               loss_convention="sum(loss)/2 over blocks, not divided by nsamples (the reference's print)")
    layers = []
    for r in results:
        c = cpp_layers.get((r["block"], r["module"]), {})
        cd = torch.tensor(c["hessian"]["diag"]) if c.get("hessian", {}).get("diag") else None
        e = dict(block=r["block"], module=r["module"], name=r["name"], shape=r["shape"], hessian_nsamples=r["nsamples"],
                 hessian_diag_max_rel_diff=((r["H_diag"] - cd).abs().max() / cd.abs().max()).item()
                 if cd is not None and cd.shape == r["H_diag"].shape else None)
        if "gptq" in r:
            g, cg = r["gptq"], c.get("gptq", {})
            e["gptq"] = dict(loss=g["loss"], rel_error=g["rel_error"], damp_fraction=g["damp_fraction"],
                             damp_abs=g["damp_abs"], damp_raises=g["damp_raises"],
                             fell_back_to_rtn=g["fell_back_to_rtn"], seconds=g["seconds"],
                             cpp_loss=cg.get("loss"), cpp_rel_error=cg.get("rel_error"),
                             cpp_damp_fraction=cg.get("damp_fraction", cg.get("damp_percent")), cpp_damp_raises=cg.get("damp_raises"),
                             loss_rel_diff=rel(g["loss"], cg.get("loss")))
            if s["act_order"] and cg.get("perm") is not None and g["perm"] is not None:
                e["gptq"]["perm_same_as_cpp"] = g["perm"].tolist() == cg["perm"]
        if "rtn" in r:
            e["rtn"] = dict(rel_error=r["rtn"]["rel_error"], cpp_rel_error=c.get("rtn", {}).get("rel_error"))
        layers.append(e)
    out["layers"] = layers

    if a.dump_codes:
        for method in methods:
            d = os.path.join(a.dump_codes, method)
            os.makedirs(d, exist_ok=True)
            for r in results:
                q = r[method]
                np.save(os.path.join(d, r["name"] + ".codes.npy"), q["codes"].numpy())  # uint8 [out, in]
                np.save(os.path.join(d, r["name"] + ".scales.npy"), q["scales"].numpy())  # fp32 [G, out]
                np.save(os.path.join(d, r["name"] + ".zeros.npy"), q["zeros"].numpy().astype(np.int32))
                np.save(os.path.join(d, r["name"] + ".g_idx.npy"), q["g_idx"].numpy())
                if q.get("perm") is not None:
                    np.save(os.path.join(d, r["name"] + ".perm.npy"), q["perm"].numpy().astype(np.int32))
        out["dump_codes"] = os.path.abspath(a.dump_codes)

    if a.compare_export:
        cmp = []
        for r, e in zip(results, layers):
            N, K = r["shape"]
            c = compare_layer(r[exp_cfg["_method"]], export_layer(exp_t, exp_cfg, r["name"], N, K), a.tie_eps)
            e["export"] = c
            cmp.append(dict(name=r["name"], **c))
        out["export_compare"] = dict(folder=os.path.abspath(a.compare_export), method=exp_cfg["_method"],
                                     checkpoint_format=exp_cfg.get("checkpoint_format"), layers=cmp)

    timing = dict(load=t_load, quantize=t_quant)
    if not a.no_eval:
        eval_ids = lr.read_ids(a.eval_ids)
        ppl = rep.get("perplexity") or {}
        eseq = a.eval_seqlen or ppl.get("seqlen") or seqlen
        maxw = a.eval_max_windows
        if maxw is None and ppl.get("windows") and ppl.get("seqlen") == eseq and ppl["windows"] < len(eval_ids) // eseq:
            maxw = ppl["windows"]  # the report's run had --eval-max-windows
        if ppl.get("tokens") and ppl["tokens"] != len(eval_ids):
            print("warning: eval ids have %d tokens, the report's evaluation text %d" % (len(eval_ids), ppl["tokens"]),
                  file=sys.stderr)
        sd = getattr(torch, a.eval_scales)
        models = [("original", m)] + [(meth, model_with(m, results, meth, sd)) for meth in ("rtn", "gptq") if meth in methods]
        if a.eval_export:
            xm = dict(m)
            xm["layers"] = [dict(l) for l in m["layers"]]
            for r in results:
                N, K = r["shape"]
                xm["layers"][r["block"]][KEYS[r["module"]]] = dequantize(
                    export_layer(exp_t, exp_cfg, r["name"], N, K), torch.float32).to(dtype).contiguous()
            models.append(("export", xm))
        pres = {}
        for name, mm in models:
            t0 = time.perf_counter()
            with torch.inference_mode():
                pr = lr.perplexity(mm, eval_ids, eseq, maxw, a.eval_batch)
            timing["eval_" + name] = time.perf_counter() - t0
            pres[name] = pr
            print("  ppl %-8s %.10g (%.1f s)" % (name, pr["ppl"], timing["eval_" + name]), file=sys.stderr)
        any_pr = pres["original"]
        out["perplexity"] = dict(
            seqlen=eseq, windows=any_pr["windows"], tokens=any_pr["tokens"],
            **{k: pres[k]["ppl"] for k in pres}, nll_mean={k: pres[k]["nll_mean"] for k in pres},
            cpp={k: ppl.get(k) for k in ("original", "rtn", "gptq")}, cpp_windows=ppl.get("windows"),
            rel_diff={k: rel(pres[k]["ppl"], ppl.get(k)) for k in ("original", "rtn", "gptq") if k in pres})
        if "export" in pres:
            em = exp_cfg["_method"]
            out["perplexity"]["rel_diff"]["export_vs_cpp_" + em] = rel(pres["export"]["ppl"], ppl.get(em))
    timing["total"] = time.perf_counter() - t_start
    out["timing"] = timing
    out["cpp_timing"] = rep.get("timing")
    out["cpp_perplexity_seconds"] = (rep.get("perplexity") or {}).get("seconds")

    # ---- summary
    print("\n%-34s %9s %12s %12s %9s %6s %11s %11s %s" % (
        "layer", "H diag", "loss ref", "loss c++", "rel diff", "damp", "gptq rel", "rtn rel",
        "codes differ (first: row,pos ref/c++ code, x/scale)"))
    for e in layers:
        g = e.get("gptq", {})
        x = e.get("export")
        xs = ""
        if x:
            xs = "%d/%d" % (x["codes_differ"], x["codes"])
            if x["first"]:
                f = x["first"]
                xs += " (%d,%d %d/%d, %.6f)" % (f["row"], f["position"], f["ref_code"], f["export_code"],
                                                   f["ref_x_over_scale"])
            if x["exact_ties"]:
                xs += "; exact ties %d: c++ %d up, %d down" % (x["exact_ties"], x["exact_ties_export_up"],
                                                               x["exact_ties_export_down"])
        damp = "%g%s" % (g["damp_fraction"], "+" if g["damp_raises"] else "") if g.get("damp_fraction") else \
            ("rtn!" if g.get("fell_back_to_rtn") else "-")
        print("%-34s %9s %12s %12s %9s %6s %11s %11s %s" % (
            e["name"], fmt(e["hessian_diag_max_rel_diff"], "%.1e"), fmt(g.get("loss"), "%.6g"),
            fmt(g.get("cpp_loss"), "%.6g"), fmt(g.get("loss_rel_diff"), "%.2e"), damp,
            fmt(g.get("rel_error"), "%.4g"), fmt(e.get("rtn", {}).get("rel_error"), "%.4g"), xs))
    if "perplexity" in out:
        p = out["perplexity"]
        print("\nperplexity (seqlen %d, %d windows)   reference           c++                 rel diff"
              % (p["seqlen"], p["windows"]))
        for k in ("original", "rtn", "gptq", "export"):
            if k in p:
                em = exp_cfg["_method"] if exp_cfg else None
                cv = p["cpp"].get(k) if k != "export" else p["cpp"].get(em)
                print("  %-32s %-19.12g %-19s %s" % (k if k != "export" else "export (vs c++ %s)" % em, p[k],
                                                     fmt(cv, "%.12g"), fmt(rel(p[k], cv), "%.2e")))
    print("time: %.1f s (load %.1f, quantize %.1f%s)" % (
        timing["total"], timing["load"], timing["quantize"],
        "".join(", eval %s %.1f" % (k[5:], v) for k, v in timing.items() if k.startswith("eval_"))))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
