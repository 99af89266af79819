#!/usr/bin/env python3
"""Rebuild dgm's VAE, MADE and 2-D RealNVP in PyTorch and compare likelihoods.

    build/bin/dgm_interop export DIR     # dgm: train briefly, write checkpoints, JSON and test data
    python3 scripts/to_torch.py DIR       # PyTorch: rebuild from the JSON, load, compare

For each model the JSON beside the checkpoint names the model and its
constructor arguments; the PyTorch module is built from them with the same
attribute names, so load_state_dict(strict=True) takes dgm's tensors as they
are (Linear weights [out, in], MADE's masks as buffers). It then computes, in
float32, the log-likelihood of the 100 test inputs dgm wrote (for the VAE: the
ELBO with the noise dgm used) and compares with dgm's numbers: they must agree
to 1e-4 relative. Needs Debian's python3-torch and python3-numpy.
"""
import json
import sys

import numpy as np

from safetensors_numpy import read_safetensors

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("to_torch.py: PyTorch is not installed; on Debian: apt-get install python3-torch")
    sys.exit(2)


class MaskedLinear(nn.Linear):
    """dgm's nn::MaskedLinear: linear(x, weight * mask, bias), the mask a buffer."""

    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", torch.ones(n_out, n_in))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """models/made.h: layer0 .. layerL, ReLU between; inputs centred as (x - 0.5) * 2."""

    def __init__(self, dims, hidden, levels, order):
        super().__init__()
        self.dims, self.levels = dims, levels
        widths = [dims] + list(hidden)
        for i in range(len(hidden)):
            setattr(self, f"layer{i}", MaskedLinear(widths[i], widths[i + 1]))
        out = dims if levels == 2 else levels * dims
        setattr(self, f"layer{len(hidden)}", MaskedLinear(widths[-1], out))
        self.n_layers = len(hidden) + 1

    def log_prob(self, x):
        h = (x - 0.5) * 2.0
        for i in range(self.n_layers - 1):
            h = F.relu(getattr(self, f"layer{i}")(h))
        out = getattr(self, f"layer{self.n_layers - 1}")(h)
        if self.levels == 2:
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
        logits = out.reshape(x.shape[0], self.levels, self.dims)
        index = torch.round(x * (self.levels - 1)).long()
        return torch.log_softmax(logits, 1).gather(1, index.unsqueeze(1)).squeeze(1).sum(1)


class VAE(nn.Module):
    """models/vae.h: encoder.{0,2,..} Linear+ReLU, heads mu and logvar, decoder mirrored, Bernoulli."""

    def __init__(self, data_dim, hidden, latent_dim, decoder):
        super().__init__()
        if decoder != "bernoulli":
            raise ValueError("to_torch.py rebuilds the Bernoulli VAE only")
        enc, prev = [], data_dim
        for h in hidden:
            enc += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        self.encoder = nn.Sequential(*enc)
        self.mu = nn.Linear(prev, latent_dim)
        self.logvar = nn.Linear(prev, latent_dim)
        dec, prev = [], latent_dim
        for h in reversed(hidden):
            dec += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        dec.append(nn.Linear(prev, data_dim))
        self.decoder = nn.Sequential(*dec)

    def elbo(self, x, eps):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu ** 2 + torch.exp(logvar) - 1.0 - logvar).sum(1)
        return rec - kl


class RealNVP2D(nn.Module):
    """models/flows.h: couplings c0..c{L-1}, each MLP 2-h-h-2; layer i keeps coordinate i % 2."""

    def __init__(self, layers, hidden):
        super().__init__()
        self.layers = layers
        for i in range(layers):
            setattr(self, f"c{i}", nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                                 nn.Linear(hidden, 2)))

    def log_prob(self, x):
        log_det = torch.zeros(x.shape[0])
        for i in range(self.layers):
            keep, tr = i % 2, 1 - i % 2
            mask = torch.zeros(1, 2)
            mask[0, keep] = 1
            st = getattr(self, f"c{i}")(x * mask)
            s, t = torch.tanh(st[:, 0]), st[:, 1]
            y_tr = x[:, tr] * torch.exp(s) + t
            x = torch.stack([x[:, keep], y_tr], 1) if keep == 0 else torch.stack([y_tr, x[:, keep]], 1)
            log_det = log_det + s
        return log_det - 0.5 * (x ** 2).sum(1) - np.log(2 * np.pi)


BUILDERS = {
    "made": lambda c: MADE(c["dims"], c["hidden"], c["levels"], c["order"]),
    "vae": lambda c: VAE(c["data_dim"], c["hidden"], c["latent_dim"], c["decoder"]),
    "realnvp2d": lambda c: RealNVP2D(c["layers"], c["hidden"]),
}


def compare(folder, tag):
    with open(f"{folder}/{tag}.json") as f:
        meta = json.load(f)
    model = BUILDERS[meta["model"]](meta["config"])
    weights, _ = read_safetensors(f"{folder}/{tag}.safetensors")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=True)
    model.eval()
    test, _ = read_safetensors(f"{folder}/{tag}_test.safetensors")
    x = torch.from_numpy(test["x"].copy())
    with torch.no_grad():
        if meta["model"] == "vae":
            ours, theirs, what = model.elbo(x, torch.from_numpy(test["eps"].copy())), test["elbo"], "ELBO (dgm's noise)"
        else:
            ours, theirs, what = model.log_prob(x), test["log_prob"], "log p(x)"
    ours = ours.numpy().astype(np.float64)
    theirs = theirs.astype(np.float64)
    rel = np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12))
    ok = rel <= 1e-4
    print(f"{tag:10s} {meta['model']:10s} {len(weights):3d} tensors loaded strictly; {what} of {len(theirs)} test inputs: "
          f"mean dgm {theirs.mean():.6f}, PyTorch {ours.mean():.6f}, max relative difference {rel:.2e}: "
          f"{'PASS' if ok else 'FAIL'} (bar 1e-4)")
    print(f"           config {json.dumps(meta['config'])[:100]}; data: {meta.get('data_transform', '?')}")
    return ok


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    print(f"PyTorch {torch.__version__}, numpy {np.__version__}")
    results = [compare(sys.argv[1], tag) for tag in ("vae", "made", "realnvp2d")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
