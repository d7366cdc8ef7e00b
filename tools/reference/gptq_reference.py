#!/usr/bin/env python3
"""Independent cross-check of core/quant against the reference GPTQ, in PyTorch.

The functions below transcribe IST-DASLab gptq (quant.py's Quantizer and quantize, gptq.py's
add_batch and fasterquant) as docs/gptq-spec.md describes them, plus GPTQModel's g_idx, in fp32
on the CPU. They read the layer written by our `gptq_dump` tool (tools/gptq_dump.cpp), rerun
every configuration it ran, and report how many integer codes agree and, where they differ, why:
the first difference in a row is classified by how far the reference's x/scale was from a
rounding tie at that point; every later difference in that row follows from the first (the
error feedback carries a one-step difference into the remaining columns).

    build/tools/gptq_dump /tmp/gptq_dump
    python3 tools/reference/gptq_reference.py /tmp/gptq_dump     # Debian's python3-torch

Not part of CTest: it needs PyTorch.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch


# ---- quant.py --------------------------------------------------------------------------

# The engine's rounding rule (core/quant/quantizer.h, round_quotient): torch.round (half to
# even), except that a quotient within 2^-22 of its magnitude of a half-integer counts as that
# half-integer, so that a tie decided only by the last bits of its inputs (always the case at a
# symmetric grid's negative end) is decided as exact arithmetic decides it. False gives
# upstream's plain torch.round (--no-tie-snap).
TIE_SNAP = True


def round_quotient(v):
    if not TIE_SNAP:
        return torch.round(v)
    h = torch.floor(v) + 0.5  # exact for |v| < 2^22
    tie = ((v - h).abs() <= h.abs() * 2.0 ** -22) & (v.abs() < 2.0 ** 22)
    return torch.round(torch.where(tie, h, v))


def quantize_codes(x, scale, zero, maxq):
    """The reference's quantize(), also returning the integer codes."""
    q = torch.clamp(round_quotient(x / scale) + zero, 0, maxq)
    return scale * (q - zero), q


class Quantizer:
    def __init__(self, bits, sym=True, mse=False, norm=2.4, grid=100, maxshrink=.8):
        self.maxq = torch.tensor(2 ** bits - 1)
        self.sym, self.mse, self.norm, self.grid, self.maxshrink = sym, mse, norm, grid, maxshrink
        self.scale = None
        self.zero = None

    def ready(self):
        return self.scale is not None

    def find_params(self, x):
        # perchannel=True, weight=True: one grid per row
        x = x.flatten(1)
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = round_quotient(-xmin / self.scale)
        if self.mse:
            best = torch.full([x.shape[0]], float('inf'))
            for i in range(int(self.maxshrink * self.grid)):
                p = 1 - i / self.grid
                xmin1 = p * xmin
                xmax1 = p * xmax
                scale1 = (xmax1 - xmin1) / self.maxq
                zero1 = round_quotient(-xmin1 / scale1) if not self.sym else self.zero
                q, _ = quantize_codes(x, scale1.unsqueeze(1), zero1.unsqueeze(1), self.maxq)
                q -= x
                q.abs_()
                q.pow_(self.norm)
                err = torch.sum(q, 1)
                tmp = err < best
                if torch.any(tmp):
                    best[tmp] = err[tmp]
                    self.scale[tmp] = scale1[tmp]
                    self.zero[tmp] = zero1[tmp]
        self.scale = self.scale.unsqueeze(1)
        self.zero = self.zero.unsqueeze(1)


# ---- gptq.py ---------------------------------------------------------------------------

def add_batch(state, inp, nseq):
    """Running-mean Hessian: inp [tokens, K] holding nseq sequences."""
    H, nsamples = state
    inp = inp.t()
    H *= nsamples / (nsamples + nseq)
    nsamples += nseq
    inp = math.sqrt(2 / nsamples) * inp.float()
    H += inp.matmul(inp.t())
    return H, nsamples


def fasterquant(W, H, bits, sym, mse, blocksize=128, percdamp=.01, groupsize=-1,
                actorder=False, static_groups=False):
    W = W.clone().float()
    H = H.clone()
    columns = W.shape[1]
    quantizer = Quantizer(bits, sym=sym, mse=mse)
    maxq = quantizer.maxq
    if not quantizer.ready():
        quantizer.find_params(W)

    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0

    if static_groups:
        groups = []
        for i in range(0, columns, groupsize):
            qz = Quantizer(bits, sym=sym, mse=mse)
            qz.find_params(W[:, i:(i + groupsize)])
            groups.append(qz)

    perm = None
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)

    Losses = torch.zeros_like(W)
    Q = torch.zeros_like(W)
    codes = torch.zeros_like(W)
    # x / scale at each quantization, to classify disagreements (not in the reference)
    ratio = torch.zeros_like(W)
    scales, zeros = [], []

    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H

    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1:
                if not static_groups:
                    if (i1 + i) % groupsize == 0:
                        quantizer.find_params(W[:, (i1 + i):(i1 + i + groupsize)])
                        scales.append(quantizer.scale.flatten())
                        zeros.append(quantizer.zero.flatten())
                else:
                    idx = i1 + i
                    if actorder:
                        idx = perm[idx]
                    quantizer = groups[idx // groupsize]
            q, c = quantize_codes(w.unsqueeze(1), quantizer.scale, quantizer.zero, maxq)
            q = q.flatten()
            Q1[:, i] = q
            codes[:, i1 + i] = c.flatten()
            ratio[:, i1 + i] = (w.unsqueeze(1) / quantizer.scale).flatten()
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

    if groupsize == -1:
        scales, zeros = [quantizer.scale.flatten()], [quantizer.zero.flatten()]
    elif static_groups:
        scales = [g.scale.flatten() for g in groups]
        zeros = [g.zero.flatten() for g in groups]
    gs = groupsize if groupsize != -1 else columns
    # GPTQModel's g_idx
    if static_groups and actorder:
        g_idx = torch.tensor([int(perm[i]) // gs for i in range(columns)], dtype=torch.int32)
    else:
        g_idx = torch.tensor([i // gs for i in range(columns)], dtype=torch.int32)
    order = torch.arange(columns) if perm is None else perm
    if actorder:
        Q = Q[:, invperm]
        codes = codes[:, invperm]
        ratio = ratio[:, invperm]
        g_idx = g_idx[invperm]
    return dict(Q=Q, codes=codes.to(torch.uint8), ratio=ratio, loss=torch.sum(Losses).item(),
                scales=torch.stack(scales), zeros=torch.stack(zeros), g_idx=g_idx, order=order,
                perm=perm)


# ---- comparison ------------------------------------------------------------------------

def load(path, dtype, shape):
    a = np.fromfile(path, dtype=dtype)
    return torch.from_numpy(a.reshape(shape).copy())


def compare(d, cfg, W, X, H, N, K):
    name = cfg['name']
    ref = fasterquant(W, H, cfg['bits'], cfg['sym'], cfg['mse'], blocksize=cfg['blocksize'],
                      percdamp=cfg['damp_fraction'], groupsize=cfg['group_size'],
                      actorder=cfg['act_order'], static_groups=cfg['static_groups'])
    G = 1 if cfg['group_size'] == -1 else (K + cfg['group_size'] - 1) // cfg['group_size']
    codes = load(os.path.join(d, name + '.codes.u8'), np.uint8, (N, K))
    Q = load(os.path.join(d, name + '.Q.f32'), np.float32, (N, K))
    scales = load(os.path.join(d, name + '.scales.f32'), np.float32, (G, N))
    zeros = load(os.path.join(d, name + '.zeros.i32'), np.int32, (G, N))
    g_idx = load(os.path.join(d, name + '.g_idx.i32'), np.int32, (K,))
    perm = np.fromfile(os.path.join(d, name + '.perm.i32'), dtype=np.int32)

    same = codes == ref['codes']
    agree = same.float().mean().item()
    # First difference of each differing row, in quantization order.
    order = ref['order']
    same_in_order = same[:, order]
    rows = (~same_in_order).any(1).nonzero().flatten()
    near_tie = 0
    tie_dist = []
    for r in rows.tolist():
        j = int((~same_in_order[r]).nonzero()[0])
        k = int(order[j])
        x = ref['ratio'][r, k].item()
        dist = abs(abs(x - math.floor(x)) - 0.5)  # distance of x/scale from a .5 tie, in steps
        tie_dist.append(dist)
        near_tie += dist < 1e-3
    out_err = lambda Qm: ((W - Qm).double() @ X.double().t()).pow(2).sum().item()
    e_ours, e_ref = out_err(Q), out_err(ref['Q'])
    res = dict(
        name=name, agree=agree, rows_differ=len(rows), rows=N,
        first_diff_near_tie=near_tie,
        max_first_diff_tie_distance=max(tie_dist) if tie_dist else 0.0,
        perm_same=(perm.size == 0 and ref['perm'] is None) or
                  (ref['perm'] is not None and np.array_equal(perm, ref['perm'].numpy())),
        g_idx_same=bool(torch.equal(g_idx, ref['g_idx'])),
        scales_rel=((scales - ref['scales']).abs().max() / ref['scales'].abs().max()).item(),
        zeros_same=float((zeros == ref['zeros'].to(torch.int32)).float().mean().item()),
        loss_ours=cfg['loss'], loss_ref=ref['loss'],
        out_err_ours=e_ours, out_err_ref=e_ref)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('dump_dir')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', help='also write the results here')
    ap.add_argument('--no-tie-snap', action='store_true',
                    help='plain torch.round, as upstream, instead of the engine\'s round_quotient')
    args = ap.parse_args()
    global TIE_SNAP
    TIE_SNAP = not args.no_tie_snap
    torch.set_num_threads(args.threads)
    d = args.dump_dir
    man = json.load(open(os.path.join(d, 'manifest.json')))
    N, K, T = man['rows'], man['cols'], man['tokens']
    W = load(os.path.join(d, 'W.f32'), np.float32, (N, K))
    X = load(os.path.join(d, 'X.f32'), np.float32, (T, K))
    H = load(os.path.join(d, 'H.f32'), np.float32, (K, K))

    # The Hessian, accumulated the reference's way from the same batches.
    state = (torch.zeros(K, K), 0)
    per = man['sequences_per_batch'] * man['seq_len']
    for t0 in range(0, T, per):
        xb = X[t0:t0 + per]
        state = add_batch(state, xb, (xb.shape[0] + man['seq_len'] - 1) // man['seq_len'])
    Href = state[0]
    print(f"layer {N}x{K}, {T} tokens; Hessian: n = {state[1]} sequences (ours {man['n_samples']}), "
          f"max |H_ours - H_ref| / max |H_ref| = "
          f"{((H - Href).abs().max() / Href.abs().max()).item():.2e}")
    print("GPTQ below runs on OUR H, so that only fasterquant is compared.\n")

    hdr = (f"{'config':24} {'codes agree':>11} {'rows differ':>11} {'1st diff near tie':>17} "
           f"{'g_idx':>5} {'perm':>4} {'scales rel':>10} {'loss ours/ref':>13} "
           f"{'||(W-Q)X|| ours/ref':>19}")
    print(hdr)
    results = []
    for cfg in man['configs']:
        r = compare(d, cfg, W, X, H, N, K)
        results.append(r)
        print(f"{r['name']:24} {100 * r['agree']:10.3f}% {r['rows_differ']:5d}/{r['rows']:<5d} "
              f"{r['first_diff_near_tie']:9d}/{r['rows_differ']:<7d} "
              f"{'ok' if r['g_idx_same'] else 'DIFF':>5} {'ok' if r['perm_same'] else 'DIFF':>4} "
              f"{r['scales_rel']:10.2e} {r['loss_ours'] / r['loss_ref']:13.6f} "
              f"{math.sqrt(r['out_err_ours'] / r['out_err_ref']):19.6f}")
    if args.json:
        json.dump(results, open(args.json, 'w'), indent=2)
    bad = [r['name'] for r in results if r['agree'] < 0.99 or not r['g_idx_same'] or not r['perm_same']]
    if bad:
        print('\nBELOW EXPECTATION (agreement < 99% or g_idx/perm differ):', ', '.join(bad))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
