"""An independent reference for the Sort-of-CLEVR runs: kimhc6028/relational-networks' CNN+RN and CNN+MLP
(the PyTorch reproduction of Santoro et al. 2017 whose curves bench/RESULTS.md quotes), written anew in
PyTorch, trained on this package's Sort-of-CLEVR with the paper's 11-bit questions (6 bits of colour,
relational or not, 3 of subtype), Adam 1e-4, a batch of relational questions then one of non-relational
ones (their loop). It tells whether a behaviour of our Keras models is theirs too.

    python bench/vqa_reference.py data DIR        # kerascnn's generator -> DIR/{train,test,probe}.npz
    python bench/vqa_reference.py train DIR --model rn|mlp --steps N --every K   # needs torch, not kerascnn

`data` runs where kerascnn is installed; `train` where PyTorch, NumPy and scikit-learn are (neither is
a dependency of kerascnn: `pip install torch numpy scikit-learn` in a separate environment). Every K
steps it prints the mean training accuracy of those steps, the accuracy per question type on 300 test
scenes (seed 777, BN in eval mode), and the colour / shape probe of `bench/vqa.py probe` (a logistic
regression on the conv4 cell holding each object's centre; 1,200 scenes of seed 4242).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

SETS = (("train", 9800, 0), ("test", 300, 777), ("probe", 1200, 4242))
TYPES = ("shape", "horizontal", "vertical", "closest", "furthest", "count")  # sort_of_clevr.QUESTION_TYPES
N_ANSWERS = 12


def make_data(folder: str) -> None:
    import os

    from kerascnn.data import sort_of_clevr as soc

    assert soc.QUESTION_TYPES == TYPES and len(soc.ANSWERS) == N_ANSWERS
    os.makedirs(folder, exist_ok=True)
    for name, n, seed in SETS:
        d = soc.generate(n, seed)
        np.savez(os.path.join(folder, f"{name}.npz"), images=d.images, types=d.types, colors=d.colors,
                 answers=d.answers, centres=d.centres, shapes=d.shapes)
        print(f"{folder}/{name}.npz: {n} scenes (seed {seed})")


def question_bits(types: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """The paper's 11-bit question: colour one-hot (6), non-relational / relational (2), subtype (3)."""
    q = np.zeros(types.shape + (11,), np.float32)
    idx = np.indices(types.shape)
    q[(*idx, colors)] = 1
    q[(*idx, 6 + (types >= 3))] = 1
    q[(*idx, 8 + types % 3)] = 1
    return q


def build(kind: str):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        """Four 3x3 stride-2 convolutions of 24 maps, each conv -> ReLU -> BN (their order), then g / f."""

        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else 24, 24, 3, stride=2, padding=1) for i in range(4)])
            self.bns = nn.ModuleList([nn.BatchNorm2d(24) for _ in range(4)])
            if kind == "rn":
                self.g1 = nn.Linear(26 * 2 + 11, 256)
                self.g = nn.ModuleList([nn.Linear(256, 256) for _ in range(3)])
                self.f1 = nn.Linear(256, 256)
            else:
                self.f1 = nn.Linear(5 * 5 * 24 + 11, 256)
            self.fc2, self.fc3 = nn.Linear(256, 256), nn.Linear(256, N_ANSWERS)
            cells = torch.tensor([[(i // 5 - 2) / 2.0, (i % 5 - 2) / 2.0] for i in range(25)])
            self.register_buffer("coords", cells)

        def features(self, x):
            for conv, bn in zip(self.convs, self.bns):
                x = bn(F.relu(conv(x)))
            return x

        def forward(self, x, q):
            x = self.features(x)
            if kind == "rn":
                b = x.shape[0]
                o = torch.cat([x.flatten(2).transpose(1, 2), self.coords.expand(b, 25, 2)], 2)  # (B, 25, 26)
                w = self.g1.weight  # over [o_i, o_j, q]: its first layer once per object, added per pair (exact)
                h = (o @ w[:, :26].T)[:, None] + (o @ w[:, 26:52].T)[:, :, None] + (q @ w[:, 52:].T + self.g1.bias)[:, None, None]
                h = F.relu(h).reshape(b, 625, 256)
                for layer in self.g:
                    h = F.relu(layer(h))
                h = F.relu(self.f1(h.sum(1)))
            else:
                h = F.relu(self.f1(torch.cat([x.flatten(1), q], 1)))
            h = F.dropout(F.relu(self.fc2(h)), training=self.training)
            return F.log_softmax(self.fc3(h), 1)

    return Net()


def train(folder: str, kind: str, steps: int, every: int, seed: int) -> None:
    try:
        import torch
        import torch.nn.functional as F
        from vqa import cell_probe  # bench/vqa.py: NumPy and scikit-learn only
    except ImportError as e:
        sys.exit(f"vqa_reference.py train needs PyTorch and scikit-learn ({e}); pip install torch scikit-learn")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    try:
        data = {name: dict(np.load(f"{folder}/{name}.npz")) for name, _, _ in SETS}
    except OSError as e:
        sys.exit(f"vqa_reference.py train: {folder} lacks its data ({e}); run `python bench/vqa_reference.py data {folder}`")

    def pixels(x):
        return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0

    model = build(kind)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    tr = data["train"]
    bits = question_bits(tr["types"], tr["colors"])
    scene, slot = np.indices(tr["types"].shape)
    groups = [np.stack([scene[m], slot[m]], 1) for m in (tr["types"] >= 3, tr["types"] < 3)]  # rel., non-rel.

    def judge() -> str:
        model.eval()
        te, pr = data["test"], data["probe"]
        with torch.no_grad():
            q = torch.from_numpy(question_bits(te["types"], te["colors"]))
            pred = np.concatenate([model(pixels(te["images"][k:k + 25]).repeat_interleave(20, 0),
                                         q[k:k + 25].reshape(-1, 11)).argmax(1).numpy()
                                   for k in range(0, len(te["images"]), 25)])
            f = torch.cat([model.features(pixels(pr["images"][k:k + 200])) for k in range(0, 1200, 200)])
        model.train()
        probe = cell_probe(f.permute(0, 2, 3, 1).numpy(), pr["centres"], pr["shapes"], 75)
        t, a = te["types"].ravel(), te["answers"].ravel()
        per_type = " ".join(f"{n} {np.mean(pred[t == k] == a[t == k]):.3f}" for k, n in enumerate(TYPES))
        return f"{per_type} | conv4 colour {probe['colour']:.3f} shape {probe['shape']:.3f}"

    print(f"{kind} step 0: {judge()}", flush=True)
    step, start, hits = 0, time.time(), []
    while step < steps:
        orders = [rng.permutation(len(g)) for g in groups]
        for k in range(len(orders[0]) // 64):
            for g, order in zip(groups, orders):
                i, j = g[order[k * 64:(k + 1) * 64]].T
                out = model(pixels(tr["images"][i]), torch.from_numpy(bits[i, j]))
                y = torch.from_numpy(tr["answers"][i, j])
                opt.zero_grad()
                F.nll_loss(out, y).backward()
                opt.step()
                hits.append((out.argmax(1) == y).float().mean().item())
                step += 1
                if step % every == 0:
                    print(f"{kind} step {step} ({time.time() - start:.0f} s): train {np.mean(hits[-every:]):.3f}; "
                          f"{judge()}", flush=True)
            if step >= steps:
                break


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("data").add_argument("dir")
    t = sub.add_parser("train")
    t.add_argument("dir")
    t.add_argument("--model", choices=("rn", "mlp"), default="rn")
    t.add_argument("--steps", type=int, default=6124)
    t.add_argument("--every", type=int, default=500)
    t.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.cmd == "data":
        make_data(a.dir)
    else:
        train(a.dir, a.model, a.steps, a.every, a.seed)


if __name__ == "__main__":
    main()
