#!/usr/bin/python3
"""Forward-pass throughput in PyTorch fp32, as a yardstick for the C++ benchmark.

 (a) sample model: whole-model forward (incl. lm_head, no KV cache) over a batch of
     windows of --seqlen tokens; tokens/s = batch * seqlen / time.
 (b) one decoder block with LLaMA-7B shapes (hidden 4096, 32 heads, 32 kv heads,
     intermediate 11008), --block-seqlen 2048 tokens, seeded random weights;
     tokens/s for one forward, with the time split GEMMs / attention / rest.
Warm-up once, then --runs timed runs; median and best are reported. Prints JSON.

  bench_forward_torch.py [--threads 2] [--runs 5] [--batch 8] [--skip-block] [--openblas-coretype auto]
"""
import argparse, os, sys, time
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "../../../shared/data/models/stories260K"))
ap.add_argument("--seqlen", type=int, default=512)
ap.add_argument("--batch", type=int, default=8, help="windows per forward for (a)")
ap.add_argument("--block-seqlen", type=int, default=2048)
ap.add_argument("--skip-block", action="store_true")
ap.add_argument("--skip-model", action="store_true")
ap.add_argument("--openblas-coretype", default="auto",
                help="OPENBLAS_CORETYPE to force; 'auto': SkylakeX/Haswell from /proc/cpuinfo; 'none': OpenBLAS's own")
args = ap.parse_args()
# torch's BLAS here is the system libblas (OpenBLAS via Debian alternatives), whose thread
# pool is not governed by torch.set_num_threads: fix it before torch loads. OpenBLAS 0.3.21
# does not know newer Xeons (e.g. family 6 model 207) and falls back to its SSE3 'Prescott'
# kernels (~4x slower sgemm), hence the forced core type.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
if args.openblas_coretype == "auto" and "OPENBLAS_CORETYPE" not in os.environ:
    flags = open("/proc/cpuinfo").read()
    ct = "SkylakeX" if " avx512f" in flags else "Haswell" if " avx2" in flags else None
    if ct:
        os.environ["OPENBLAS_CORETYPE"] = ct
elif args.openblas_coretype not in ("auto", "none"):
    os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype

import ctypes, json, statistics
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref

torch.set_num_threads(args.threads)
SPLIT = {"linear": "gemm", "attention": "attention", "rmsnorm": "rest", "rope": "rest", "swiglu": "rest"}
acc = {"gemm": 0.0, "attention": 0.0, "rest": 0.0}


def timed(fn, cat):
    def w(*a, **k):
        t = time.perf_counter()
        r = fn(*a, **k)
        acc[cat] += time.perf_counter() - t
        return r
    return w


def bench(fn, runs):
    fn()  # warm-up
    for k in acc:
        acc[k] = 0.0
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), sum(ts)


def blas_info():
    cfg = torch.__config__.show()
    blas = [s.strip() for s in cfg.replace(",", "\n").splitlines() if "BLAS_INFO" in s]
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l or "mkl" in l})
    core = None
    for p in libs:
        if "libopenblas" in p:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = "%s, %d threads" % (lib.openblas_get_corename().decode(), lib.openblas_get_num_threads())
    return {"torch": torch.__version__, "blas_info": blas, "blas_libs_mapped": libs, "openblas_core": core,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "cpu_capability": [s.strip() for s in cfg.splitlines() if "CPU capability" in s]}


out = {"threads": args.threads, "runs": args.runs, "torch_num_threads": torch.get_num_threads(),
       "load_avg": os.getloadavg(), **blas_info()}
g = torch.Generator().manual_seed(0)
with torch.inference_mode():
    if not args.skip_model:
        m = ref.load_model(args.model, torch.float32)
        ids = torch.randint(0, m["vocab"], (args.batch, args.seqlen), generator=g)
        med, best, _ = bench(lambda: ref.forward(m, ids), args.runs)
        n = args.batch * args.seqlen
        out["sample_model"] = {"model": os.path.normpath(args.model), "batch": args.batch, "seqlen": args.seqlen,
                               "median_s": med, "best_s": best, "tok_s_median": n / med, "tok_s_best": n / best}
    if not args.skip_block:
        D, H, F, T = 4096, 32, 11008, args.block_seqlen
        r = lambda *s: torch.randn(*s, generator=g) * 0.02
        m = dict(n_heads=H, n_kv_heads=H, head_dim=D // H, eps=1e-5, theta=10000.0, rope="half")
        l = dict(attn_norm=torch.ones(D), ffn_norm=torch.ones(D), wq=r(D, D), wk=r(D, D), wv=r(D, D), wo=r(D, D),
                 bq=None, bk=None, bv=None, w_gate=r(F, D), w_up=r(F, D), w_down=r(D, F))
        x = torch.randn(1, T, D, generator=g)
        cos, sin = ref.rope_tables(T, D // H, 10000.0, torch.float32)
        for name, cat in SPLIT.items():  # wrap the reference's math functions with timers
            setattr(ref, name, timed(getattr(ref, name), cat))
        med, best, tot = bench(lambda: ref.block(m, l, x, cos, sin), args.runs)
        split = {k: v / args.runs for k, v in acc.items()}  # mean per timed forward
        split["unwrapped"] = tot / args.runs - sum(split.values())  # residual adds, reshapes, embedding
        flops = 2 * T * (4 * D * D + 3 * D * F) + 2 * 2 * T * T * D  # GEMMs + full (unmasked) QK^T, PV
        out["llama7b_block"] = {"hidden": D, "heads": H, "kv_heads": H, "intermediate": F, "seqlen": T,
                                "median_s": med, "best_s": best, "tok_s_median": T / med, "tok_s_best": T / best,
                                "gflops_median": flops / med / 1e9, "split_mean_s": split}
print(json.dumps(out, indent=1))
