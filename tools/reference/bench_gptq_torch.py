#!/usr/bin/env python3
"""The steps bench/bench_gptq.cpp times, in PyTorch on the CPU, the way the reference runs them.

GEMM throughput (torch.mm), Hessian accumulation (gptq.py's add_batch) and fasterquant
(gptq.py, 4-bit g128 by default) on the same shapes, with the same FLOP counts, best of --reps.

    python3 tools/reference/bench_gptq_torch.py --threads 2

Debian's python3-torch calls the system BLAS (libblas.so.3, OpenBLAS when libopenblas0-pthread
is installed). OpenBLAS 0.3.21 does not recognise every recent Xeon and then falls back to its
generic "Prescott" kernels; OPENBLAS_CORETYPE=SkylakeX selects the AVX-512 ones. Both are worth
reporting: the first is what a user of the packaged torch gets, the second is torch at its best.
"""
import argparse
import math
import os
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--tokens', type=int, default=2048)
    ap.add_argument('--gemm', type=int, default=4096)
    ap.add_argument('--shapes', default='4096x4096,11008x4096')
    ap.add_argument('--bits', type=int, default=4)
    ap.add_argument('--group', type=int, default=128)
    ap.add_argument('--act-order', action='store_true')
    return ap.parse_args()


args = parse()
# OpenBLAS reads its thread count when it loads: set it before torch is imported.
os.environ.setdefault('OPENBLAS_NUM_THREADS', str(args.threads))
os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
import torch  # noqa: E402


def best_of(reps, f):
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def find_params(x, maxq, sym=True):
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    if sym:
        xmax = torch.maximum(torch.abs(xmin), xmax)
        tmp = xmin < 0
        if torch.any(tmp):
            xmin[tmp] = -xmax[tmp]
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def fasterquant(W, H, bits, groupsize, actorder, blocksize=128, percdamp=.01):
    """gptq.py's fasterquant (no static groups), returning its phase timings."""
    t0 = time.perf_counter()
    maxq = torch.tensor(2 ** bits - 1)
    W = W.clone()
    H = H.clone()
    columns = W.shape[1]
    scale, zero = find_params(W, maxq)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)
    Losses = torch.zeros_like(W)
    Q = torch.zeros_like(W)
    th = time.perf_counter()
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    t_hinv = time.perf_counter() - th
    t_blocks = t_lazy = 0.0
    lazy_flops = 0.0
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        tb = time.perf_counter()
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1 and (i1 + i) % groupsize == 0:
                scale, zero = find_params(W[:, (i1 + i):(i1 + i + groupsize)], maxq)
            q = quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2
        tl = time.perf_counter()
        t_blocks += tl - tb
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        t_lazy += time.perf_counter() - tl
        lazy_flops += 2.0 * W.shape[0] * count * (columns - i2)
    if actorder:
        Q = Q[:, invperm]
    total = time.perf_counter() - t0
    return dict(total=total, hinv=t_hinv, blocks=t_blocks, lazy=t_lazy, lazy_flops=lazy_flops,
                loss=torch.sum(Losses).item())


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"bench_gptq_torch: torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(auto)')}, best of {args.reps}")
    n = args.gemm
    A, B = torch.randn(n, n), torch.randn(n, n)
    t = best_of(args.reps, lambda: torch.mm(A, B))
    print(f"GEMM {n}x{n}x{n} (torch.mm)                {t:8.3f} s  {2 * n ** 3 / t / 1e9:7.1f} GFLOP/s")
    C = torch.randn(n, n)
    E, Hb = torch.randn(n, 128), torch.randn(128, n)

    def lazy():
        C[:, :] -= E.matmul(Hb)
    t = best_of(args.reps, lazy)
    print(f"GEMM {n}x128x{n} (W -= Err @ Hinv)        {t:8.3f} s  {2 * n * n * 128 / t / 1e9:7.1f} GFLOP/s")
    t = best_of(args.reps, lambda: C.addmm_(E, Hb, alpha=-1))
    print(f"GEMM {n}x128x{n} (addmm_, in place)       {t:8.3f} s  {2 * n * n * 128 / t / 1e9:7.1f} GFLOP/s")
    del A, B, C

    shapes = [tuple(int(v) for v in s.split('x')) for s in args.shapes.split(',')]
    kmax = max(k for _, k in shapes)
    X = torch.randn(args.tokens, kmax)

    def add_batch():
        H = torch.zeros(kmax, kmax)
        nsamples, tmp = 0, 1
        H *= nsamples / (nsamples + tmp)
        nsamples += tmp
        inp = math.sqrt(2 / nsamples) * X.t().float()
        H += inp.matmul(inp.t())
    t = best_of(args.reps, add_batch)
    print(f"Hessian {args.tokens} tokens x {kmax}                {t:8.3f} s  "
          f"{2 * args.tokens * kmax * kmax / t / 1e9:7.1f} GFLOP/s (2*T*K^2)")

    for N, K in shapes:
        Xk = torch.randn(args.tokens, K) + torch.randn(args.tokens, 64) @ torch.randn(K, 64).t()
        H = 2 * Xk.t() @ Xk
        W = 0.02 * torch.randn(N, K)
        best = None
        for _ in range(args.reps):
            r = fasterquant(W, H, args.bits, args.group, args.act_order)
            if best is None or r['total'] < best['total']:
                best = r
        f_hinv = 4 / 3 * K ** 3
        f_blocks = N * K * 128
        f_total = f_hinv + f_blocks + best['lazy_flops']
        gname = f"g{args.group}" if args.group > 0 else "per-row"
        print(f"GPTQ {N}x{K} {args.bits}-bit sym {gname}{' act-order' if args.act_order else ''}: "
              f"{best['total']:.3f} s  {f_total / best['total'] / 1e9:.1f} GFLOP/s overall")
        print(f"  Hinv (damp, chol, inverse, chol)     {best['hinv']:8.3f} s  {f_hinv / best['hinv'] / 1e9:7.1f} GFLOP/s")
        print(f"  in-block column loops                {best['blocks']:8.3f} s  {f_blocks / best['blocks'] / 1e9:7.1f} GFLOP/s")
        print(f"  lazy batch updates                   {best['lazy']:8.3f} s  {best['lazy_flops'] / best['lazy'] / 1e9:7.1f} GFLOP/s")
        print(f"  other                                {best['total'] - best['hinv'] - best['blocks'] - best['lazy']:8.3f} s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
