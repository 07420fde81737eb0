#!/usr/bin/env python3
"""EASE (Steck, WWW 2019) in NumPy on a protocol STRONG split: the reference recdb's
`ease` is checked against (docs/EASE.md).

    python3 benches/reference/ease_strong.py SPLIT.tsv [--lambdas 50,100,...] [--test-lambda L]
                                            [--dropout P] [--save-b PATH]

SPLIT.tsv has a header and rows `user  item  part`, part in train / valid_in / valid_out /
test_in / test_out / drop (only positives appear). X = the train rows (items: those with
a train positive, in item-id order); G = XᵀX + λI, P = G⁻¹, B = I − P·diagMat(1 ⊘ diag(P)).
With --dropout P > 0, G = XᵀX + λI + P/(1−P)·diagMat(diag(XᵀX)) (Steck's full-rank DLAE).
A user's scores are fold-in · B with the fold-in items excluded; Recall@k = hits /
min(k, |held-out|), NDCG@100 with binary gains and IDCG over min(|held-out|, 100),
averaged over the users that have held-out items.

Prints, for every λ, the validation figures; then the test figures at the λ chosen on
validation NDCG@100 (or at --test-lambda), with the fit's wall time. --save-b writes that
B as raw little-endian float64, row-major (B[i][j] at i·n + j), items in id order.
"""

import argparse
import time

import numpy as np


def read_split(path):
    parts = {}
    with open(path) as f:
        next(f)
        for line in f:
            u, i, p = line.rstrip("\n").split("\t")
            parts.setdefault(p, []).append((int(u), int(i)))
    return parts


def rows_by_user(pairs, col):
    users = {}
    for u, i in pairs:
        j = col.get(i)
        if j is not None:
            users.setdefault(u, []).append(j)
    return users


def fit(X, lam, dropout=0.0):
    t = time.perf_counter()
    G = X.T @ X
    G[np.diag_indices_from(G)] += lam + dropout / (1.0 - dropout) * np.diag(G)
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    B[np.diag_indices_from(B)] = 0.0
    return B, time.perf_counter() - t


def evaluate(B, fold_in, held_out, n_items):
    users = sorted(u for u in held_out if held_out[u])
    X = np.zeros((len(users), n_items))
    for r, u in enumerate(users):
        X[r, fold_in.get(u, [])] = 1.0
    S = X @ B
    S[X > 0] = -np.inf
    order = np.argsort(-S, axis=1, kind="stable")[:, :100]
    disc = 1.0 / np.log2(np.arange(2, 102))
    r20, r50, ndcg = [], [], []
    for r, u in enumerate(users):
        h = set(held_out[u])
        hit = np.array([i in h for i in order[r]], dtype=float)
        r20.append(hit[:20].sum() / min(20, len(h)))
        r50.append(hit[:50].sum() / min(50, len(h)))
        idcg = disc[: min(len(h), 100)].sum()
        ndcg.append((hit * disc).sum() / idcg)
    return np.mean(r20), np.mean(r50), np.mean(ndcg), len(users)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--lambdas", default="50,100,200,300,500,750,1000,1500,2000")
    ap.add_argument("--test-lambda", type=float)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--save-b")
    a = ap.parse_args()
    parts = read_split(a.split)
    items = sorted({i for _, i in parts["train"]})
    col = {i: j for j, i in enumerate(items)}
    train = rows_by_user(parts["train"], col)
    X = np.zeros((len(train), len(items)))
    for r, u in enumerate(sorted(train)):
        X[r, train[u]] = 1.0
    print(f"X: {X.shape[0]} train users x {X.shape[1]} items, {int(X.sum())} positives")
    vin, vout = rows_by_user(parts["valid_in"], col), rows_by_user(parts["valid_out"], col)
    tin, tout = rows_by_user(parts["test_in"], col), rows_by_user(parts["test_out"], col)
    best = None
    for lam in [float(x) for x in a.lambdas.split(",")]:
        B, secs = fit(X, lam, a.dropout)
        r20, r50, ndcg, n = evaluate(B, vin, vout, len(items))
        print(f"valid lambda={lam:g} dropout={a.dropout:g}: recall@20 {r20:.4f} recall@50 {r50:.4f} ndcg@100 {ndcg:.4f} ({n} users, fit {secs:.2f} s)")
        if best is None or ndcg > best[1]:
            best = (lam, ndcg)
    lam = a.test_lambda if a.test_lambda is not None else best[0]
    B, secs = fit(X, lam, a.dropout)
    r20, r50, ndcg, n = evaluate(B, tin, tout, len(items))
    print(f"test lambda={lam:g} dropout={a.dropout:g}: recall@20 {r20:.4f} recall@50 {r50:.4f} ndcg@100 {ndcg:.4f} ({n} users, fit {secs:.2f} s)")
    if a.save_b:
        B.astype("<f8").tofile(a.save_b)
        print(f"wrote B ({B.shape[0]}x{B.shape[1]} float64) to {a.save_b}")


if __name__ == "__main__":
    main()
