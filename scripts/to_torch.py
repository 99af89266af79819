#!/usr/bin/env python3
"""Rebuild dgm's models in PyTorch from the JSON beside their checkpoints and compare.

    build/bin/dgm_interop export DIR       # dgm: build recipes' models, train briefly, write checkpoints, JSON, test data
    python3 scripts/to_torch.py DIR         # PyTorch: rebuild from the JSON, load, compare; then the other way:
                                            # write each model's PyTorch-initialised state_dict (<tag>.torch.*)
    build/bin/dgm_interop import DIR       # dgm: load those into models built from the same JSON, write its figures
    python3 scripts/to_torch.py --check-import DIR   # PyTorch's figures vs dgm's on PyTorch's weights

Families rebuilt so far: MADE, PixelCNN (plain and gated), the VAE, RealNVP 2-D, NICE,
RealNVP with the logit layer and actnorm, the multi-scale image flow (RealNVP, and
Glow-style with 1x1 convolutions), DDPM's eps-MLP (the predicted noise of x_t made from
x_0 by the schedule, which is rebuilt here too) and DDPM's U-Net (GroupNorm residual
blocks with the step's embedding, self-attention at the lowest resolution), the DCGAN
generator and critic.

For each model the JSON beside the checkpoint names the model and its
constructor arguments; the PyTorch module is built from them with the same
attribute names, so load_state_dict(strict=True) takes dgm's tensors as they
are (Linear weights [out, in], MADE's masks as buffers). It then computes, in
float32, the log-likelihood of the 100 test inputs dgm wrote (for the VAE: the
ELBO with the noise dgm used) and compares with dgm's numbers: they must agree
to 1e-4 relative. Needs Debian's python3-torch and python3-numpy.
"""
import json
import math
import sys

import numpy as np

from safetensors_numpy import read_safetensors, write_safetensors

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


class MaskedConv2d(nn.Conv2d):
    """models/pixelcnn.h's MaskedConv2d: conv2d(x, weight * mask, bias, padding k // 2), the mask a buffer."""

    def __init__(self, n_in, n_out, k):
        super().__init__(n_in, n_out, k, padding=k // 2)
        self.register_buffer("mask", torch.ones(n_out, n_in, k, k))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    """models/pixelcnn.h: input (7x7, type A), block{b} (3x3, type B; gated: 2C channels then gate{b}, a 1x1
    conv of tanh(a) * sigmoid(b)), h <- h + block, output 1x1 conv of relu(h); inputs centred as (x - 0.5) * 2."""

    def __init__(self, levels, channels, blocks, height, width, gated):
        super().__init__()
        self.levels, self.gated, self.n_blocks = levels, gated, blocks
        self.input = MaskedConv2d(1, channels, 7)
        for b in range(blocks):
            setattr(self, f"block{b}", MaskedConv2d(channels, 2 * channels if gated else channels, 3))
            if gated:
                setattr(self, f"gate{b}", nn.Conv2d(channels, channels, 1))
        self.output = nn.Conv2d(channels, 1 if levels == 2 else levels, 1)

    def log_prob(self, x):
        h = self.input((x - 0.5) * 2.0)
        for b in range(self.n_blocks):
            u = getattr(self, f"block{b}")(F.relu(h))
            if self.gated:
                c = u.shape[1] // 2
                u = getattr(self, f"gate{b}")(torch.tanh(u[:, :c]) * torch.sigmoid(u[:, c:]))
            h = h + u
        logits = self.output(F.relu(h))
        if self.levels == 2:
            return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        index = torch.round(x * (self.levels - 1)).long()  # [N, 1, H, W]
        return torch.log_softmax(logits, 1).gather(1, index).flatten(1).sum(1)


def timestep_embedding(t, dim):
    """models/unet.h: [sin(t f_i) for i < h, cos(t f_i) for i < h], f_i = 10000^(-i / h), h = dim / 2."""
    h = dim // 2
    freq = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -torch.arange(h, dtype=torch.float64) / h)
    a = t.double()[:, None] * freq[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], 1).float()


def alpha_bar(schedule):
    """models/diffusion.h's NoiseSchedule: abar_t = prod_{s <= t} (1 - beta_s), from the schedule's own config."""
    if schedule["kind"] == "linear":
        betas = np.linspace(schedule["beta_1"], schedule["beta_T"], schedule["T"])
    elif schedule["kind"] == "betas":
        betas = np.array(schedule["betas"])
    else:
        raise ValueError(f"to_torch.py: schedule kind {schedule['kind']} is not rebuilt yet")
    return np.cumprod(1.0 - betas)


class MLPNoisePredictor(nn.Module):
    """models/unet.h: net = MLP (SiLU) on [x_t, embedding(t)]."""

    def __init__(self, n):
        super().__init__()
        widths = [n["dims"] + n["embedding"]] + list(n["hidden"]) + [n["dims"]]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i + 2 < len(widths):
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)
        self.embedding = n["embedding"]

    def forward(self, xt, t):
        return self.net(torch.cat([xt, timestep_embedding(t, self.embedding)], 1))


class ResBlock(nn.Module):
    """models/unet.h: conv1(silu(norm1(x))) + emb_proj(silu(emb)) per channel, conv2(silu(norm2(.))), + skip(x)."""

    def __init__(self, n_in, n_out, emb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, n_in, eps=1e-5)
        self.conv1 = nn.Conv2d(n_in, n_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, n_out)
        self.norm2 = nn.GroupNorm(groups, n_out, eps=1e-5)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, padding=1)
        self.skip = nn.Conv2d(n_in, n_out, 1) if n_in != n_out else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class SelfAttention2d(nn.Module):
    """models/unet.h: one head over the H W positions, x + proj(v softmax(q^T k / sqrt(C))^T)."""

    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3 * c, h * w)
        q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
        a = torch.softmax(q.transpose(1, 2) @ k / np.sqrt(c), -1)
        return x + self.proj((v @ a.transpose(1, 2)).reshape(x.shape))


class UNet(nn.Module):
    """models/unet.h's UNet, module for module: emb1, emb2, conv_in, down<l>_<b>, downsample<l>, mid1,
    mid_attention, mid2, up<l>_<b> (the first block of a level reads its skip), upsample<l>, norm_out, conv_out."""

    def __init__(self, n):
        super().__init__()
        base, mult, blocks, groups = n["base"], n["multipliers"], n["blocks"], n["groups"]
        self.base, self.levels, self.blocks = base, len(mult), blocks
        emb_dim = 4 * base
        self.emb1, self.emb2 = nn.Linear(base, emb_dim), nn.Linear(emb_dim, emb_dim)
        self.conv_in = nn.Conv2d(n["channels"], base, 3, padding=1)
        ch = base
        for l, m in enumerate(mult):
            for b in range(blocks):
                setattr(self, f"down{l}_{b}", ResBlock(ch, base * m, emb_dim, groups))
                ch = base * m
            if l + 1 < len(mult):
                setattr(self, f"downsample{l}", nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid1 = ResBlock(ch, ch, emb_dim, groups)
        self.mid_attention = SelfAttention2d(ch, groups) if n["attention"] else None
        self.mid2 = ResBlock(ch, ch, emb_dim, groups)
        for l in reversed(range(len(mult))):
            for b in range(blocks):
                setattr(self, f"up{l}_{b}", ResBlock(ch + base * mult[l] if b == 0 else ch, base * mult[l], emb_dim, groups))
                ch = base * mult[l]
            if l > 0:
                setattr(self, f"upsample{l}", nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = nn.GroupNorm(groups, ch, eps=1e-5)
        self.conv_out = nn.Conv2d(ch, n["channels"], 3, padding=1)

    def forward(self, xt, t):
        emb = self.emb2(F.silu(self.emb1(timestep_embedding(t, self.base))))
        h, skips = self.conv_in(xt), []
        for l in range(self.levels):
            for b in range(self.blocks):
                h = getattr(self, f"down{l}_{b}")(h, emb)
            skips.append(h)
            if l + 1 < self.levels:
                h = getattr(self, f"downsample{l}")(h)
        h = self.mid1(h, emb)
        if self.mid_attention is not None:
            h = self.mid_attention(h)
        h = self.mid2(h, emb)
        for l in reversed(range(self.levels)):
            h = torch.cat([h, skips[l]], 1)
            for b in range(self.blocks):
                h = getattr(self, f"up{l}_{b}")(h, emb)
            if l > 0:
                h = getattr(self, f"upsample{l}")(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class DDPM(nn.Module):
    """models/diffusion.h: the noise predictor under `net` (models/unet.h: the eps-MLP or the U-Net)."""

    def __init__(self, config):
        super().__init__()
        n = config["net"]
        self.net = MLPNoisePredictor(n) if n["kind"] == "mlp" else UNet(n)
        self.abar = alpha_bar(config["schedule"])
        # sigma_t^2 of the reverse steps (beta_t, or what fit_variances chose): saved with the parameters
        self.register_buffer("reverse_variance", torch.zeros(len(self.abar)))

    def eps_pred(self, x0, eps, t):
        ab = torch.from_numpy(self.abar[t.numpy()]).float().reshape(-1, *([1] * (x0.dim() - 1)))
        xt = x0 * torch.sqrt(ab) + eps * torch.sqrt(1 - ab)
        return self.net(xt, t)


class ConvGenerator(nn.Module):
    """models/gan.h: z -> fc -> [2w, 7, 7] -> norm1, ReLU -> up1 (convT 4x4 s2) -> norm2, ReLU -> up2 -> sigmoid."""

    def __init__(self, latent, channels, width):
        super().__init__()
        groups = max(1, width // 8)
        self.width = width
        self.fc = nn.Linear(latent, 2 * width * 49)
        self.norm1 = nn.GroupNorm(groups, 2 * width, eps=1e-5)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.norm2 = nn.GroupNorm(groups, width, eps=1e-5)
        self.up2 = nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1)

    def forward(self, z):
        h = self.fc(z).reshape(z.shape[0], 2 * self.width, 7, 7)
        h = self.up1(F.relu(self.norm1(h)))
        return torch.sigmoid(self.up2(F.relu(self.norm2(h))))


class ConvDiscriminator(nn.Module):
    """models/gan.h: conv1 (4x4 s2), LeakyReLU(0.2), conv2, LeakyReLU(0.2), fc -> one logit."""

    def __init__(self, channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)
        self.fc = nn.Linear(2 * width * 49, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)


# ---------------------------------------------------------------- sequence models (models/sequence.h, rnn.h, transformer.h)
# Tokens are read shifted right behind a start token BOS = vocab (an embedding of vocab + 1 rows); log p(x) sums
# log softmax(logits)[x_t] over the positions that count (words: up to and including the first 0).

class SequenceModel(nn.Module):
    def setup_tokens(self, c):
        self.vocab, self.length, self.words = c["vocab"], c["length"], c["input"] == "words"

    def tokens(self, x):
        x = x.reshape(x.shape[0], -1).double()
        return (x if self.words else x * (self.vocab - 1)).round().long()

    def log_prob(self, x):
        t = self.tokens(x)
        inputs = torch.cat([torch.full_like(t[:, :1], self.vocab), t[:, :-1]], 1)
        lp = torch.log_softmax(self.logits(inputs), -1).gather(2, t.unsqueeze(2)).squeeze(2)
        if self.words:  # a position counts if no 0 came before it
            ended_before = torch.cumsum((t == 0).long(), 1) - (t == 0).long()
            lp = lp * (ended_before == 0).to(lp.dtype)
        return lp.sum(1)


class RNNLM(SequenceModel):
    """models/rnn.h: embedding [V + 1, E], cell<l> (nn.LSTMCell / nn.GRUCell, PyTorch's names), head Linear."""

    def __init__(self, c):
        super().__init__()
        self.setup_tokens(c)
        self.embedding = nn.Parameter(torch.randn(c["vocab"] + 1, c["embedding"]))
        cell = nn.LSTMCell if c["cell"] == "lstm" else nn.GRUCell
        self.lstm, self.layers, self.hidden = c["cell"] == "lstm", c["layers"], c["hidden"]
        for l in range(c["layers"]):
            self.add_module(f"cell{l}", cell(c["embedding"] if l == 0 else c["hidden"], c["hidden"]))
        self.head = nn.Linear(c["hidden"], c["vocab"])

    def logits(self, inputs):
        e = self.embedding[inputs]  # [N, L, E]
        n = inputs.shape[0]
        h = [torch.zeros(n, self.hidden, dtype=e.dtype) for _ in range(self.layers)]
        c = [torch.zeros(n, self.hidden, dtype=e.dtype) for _ in range(self.layers)]
        outs = []
        for t in range(inputs.shape[1]):
            x = e[:, t]
            for l in range(self.layers):
                cell = getattr(self, f"cell{l}")
                if self.lstm:
                    h[l], c[l] = cell(x, (h[l], c[l]))
                else:
                    h[l] = cell(x, h[l])
                x = h[l]
            outs.append(x)
        return self.head(torch.stack(outs, 1))


class TransformerBlock(nn.Module):
    """models/transformer.h: pre-LayerNorm, causal multi-head attention (qkv, proj), GELU MLP (fc1, fc2)."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, h):
        n, t, c = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = q @ k.transpose(-2, -1) / math.sqrt(c // self.heads)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        a = h + self.proj((att @ v).transpose(1, 2).reshape(n, t, c))
        return a + self.fc2(F.gelu(self.fc1(self.ln2(a))))


class Transformer(SequenceModel):
    """models/transformer.h: token_embedding [V + 1, C], position_embedding [L, C] (a parameter, or the sinusoids as a
    buffer), block<l>, lnf, out (absent when the weights are tied)."""

    def __init__(self, c):
        super().__init__()
        self.setup_tokens(c)
        C = c["width"]
        self.token_embedding = nn.Parameter(torch.randn(c["vocab"] + 1, C) * 0.02)
        if c["positions"] == "learned":
            self.position_embedding = nn.Parameter(torch.randn(c["length"], C) * 0.02)
        else:
            self.register_buffer("position_embedding", torch.zeros(c["length"], C))
        for l in range(c["layers"]):
            self.add_module(f"block{l}", TransformerBlock(C, c["heads"]))
        self.n_layers, self.tied = c["layers"], c["tie_weights"]
        self.lnf = nn.LayerNorm(C)
        if not self.tied:
            self.out = nn.Linear(C, c["vocab"])

    def logits(self, inputs):
        h = self.token_embedding[inputs] + self.position_embedding[: inputs.shape[1]]
        for l in range(self.n_layers):
            h = getattr(self, f"block{l}")(h)
        z = self.lnf(h)
        return z @ self.token_embedding[: self.vocab].T if self.tied else self.out(z)


# ---------------------------------------------------------------- flows (models/flows.h)
# Each layer returns (z, log|det| per example); the names are dgm's: flow.<i> in a chain,
# flow.stage<i>.<j> in the multi-scale flow, and each layer's own parameters and buffers.

def per_channel(p, x):
    """A [1, C] parameter as it broadcasts against x: [1, C] or [1, C, 1, 1]."""
    return p if x.dim() == 2 else p.reshape(1, -1, *([1] * (x.dim() - 2)))


class Chain(nn.Module):
    def __init__(self, layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def forward(self, x):
        log_det = torch.zeros(x.shape[0])
        for layer in self.children():
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det


class LogitTransform(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, u):
        p = u * (1 - 2 * self.alpha) + self.alpha
        log_p, log_1mp = torch.log(p), torch.log(1 - p)
        d = u[0].numel()
        return log_p - log_1mp, (-(log_p + log_1mp)).flatten(1).sum(1) + d * float(np.log(1 - 2 * self.alpha))


class ActNorm(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(0.1 * torch.randn(1, channels))
        self.log_scale = nn.Parameter(0.1 * torch.randn(1, channels))
        self.register_buffer("initialized", torch.ones(1))

    def forward(self, x):
        positions = x[0, 0].numel() if x.dim() > 2 else 1
        z = (x + per_channel(self.bias, x)) * torch.exp(per_channel(self.log_scale, x))
        return z, (self.log_scale.sum() * positions).expand(x.shape[0])


class AffineCoupling(nn.Module):
    """z = b x + (1 - b)(x exp(s) + t), s = scale * tanh(raw s); the net maps C channels to 2C."""

    def __init__(self, mask_shape, net):
        super().__init__()
        self.register_buffer("mask", torch.zeros(mask_shape))
        self.register_buffer("free", torch.ones(mask_shape))
        self.net = net
        self.scale = nn.Parameter(1 + 0.1 * torch.randn(1, mask_shape[1]))

    def forward(self, x):
        c = x.shape[1]
        h = self.net(x * self.mask)
        s = per_channel(self.scale, x) * torch.tanh(h[:, :c]) * self.free
        t = h[:, c:2 * c] * self.free
        return x * torch.exp(s) + t, s.flatten(1).sum(1)


class AdditiveCoupling(nn.Module):
    def __init__(self, mask_shape, net):
        super().__init__()
        self.register_buffer("mask", torch.zeros(mask_shape))
        self.register_buffer("free", torch.ones(mask_shape))
        self.net = net

    def forward(self, x):
        return x + self.net(x * self.mask) * self.free, torch.zeros(x.shape[0])


class Scaling(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.log_scale = nn.Parameter(0.1 * torch.randn(1, dims))

    def forward(self, x):
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])


class Invertible1x1Conv(nn.Module):
    """W = P (L + I) (U + diag(sign exp(log_s))), L and U kept strictly triangular by their masks."""

    def __init__(self, channels):
        super().__init__()
        self.lower = nn.Parameter(0.1 * torch.randn(channels, channels))
        self.upper = nn.Parameter(0.1 * torch.randn(channels, channels))
        self.log_s = nn.Parameter(0.1 * torch.randn(1, channels))
        for name in ("permutation", "lower_mask", "upper_mask", "eye"):
            self.register_buffer(name, torch.zeros(channels, channels))
        self.register_buffer("sign", torch.ones(1, channels))

    def forward(self, x):
        c = x.shape[1]
        lo = self.lower * self.lower_mask + self.eye
        up = self.upper * self.upper_mask + self.eye * (self.sign * torch.exp(self.log_s))
        w = self.permutation @ (lo @ up)
        return F.conv2d(x, w.reshape(c, c, 1, 1)), (self.log_s.sum() * x[0, 0].numel()).expand(x.shape[0])


class Squeeze(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        z = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return z, torch.zeros(n)


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


def coupling_mlp(dims, hidden, out_dims):
    widths, layers = [dims] + list(hidden) + [out_dims], []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def coupling_resnet(channels, hidden, blocks, out_channels):
    return nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), *[ResidualBlock(hidden) for _ in range(blocks)],
                         nn.Conv2d(hidden, out_channels, 3, padding=1))


class MultiScale(nn.Module):
    def __init__(self, stages):
        super().__init__()
        for i, stage in enumerate(stages):
            self.add_module(f"stage{i}", stage)

    def forward(self, x):
        stages = list(self.children())
        parts, log_det = [], torch.zeros(x.shape[0])
        for i, stage in enumerate(stages):
            z, ld = stage(x)
            log_det = log_det + ld
            if i + 1 == len(stages):
                parts.append(z.flatten(1))
            else:  # the first half of the channels leaves the flow
                c = z.shape[1]
                parts.append(z[:, :c // 2].flatten(1))
                x = z[:, c // 2:]
        return torch.cat(parts, 1), log_det


class Flow(nn.Module):
    """models/flows.h's Flow: log p(u) = log p_Z(f(u)) + log|det df/du| on dequantized u (what log_prob_continuous is)."""

    def __init__(self, c):
        super().__init__()
        b = c["builder"]
        self.logistic = b == "nice" and c["prior"] == "logistic"
        if b == "nice":
            d = c["dims"]
            layers = [AdditiveCoupling((1, d), coupling_mlp(d, c["hidden"], d)) for _ in range(c["couplings"])]
            self.flow = Chain(layers + [Scaling(d)])
        elif b == "realnvp":
            d, layers = c["dims"], []
            if c["levels"] > 0:
                layers.append(LogitTransform(c["logit_alpha"]))
            for _ in range(c["couplings"]):
                if c["actnorm"]:
                    layers.append(ActNorm(d))
                layers.append(AffineCoupling((1, d), coupling_mlp(d, c["hidden"], 2 * d)))
            self.flow = Chain(layers)
        elif b == "image_flow":
            ch, h, w, stages = c["channels"], c["height"], c["width"], []
            def step(layers, mask_shape, channels):
                layers.append(ActNorm(channels))
                if c["conv1x1"]:
                    layers.append(Invertible1x1Conv(channels))
                layers.append(AffineCoupling(mask_shape, coupling_resnet(channels, c["hidden"], c["blocks"], 2 * channels)))
            for scale in range(c["scales"]):
                layers, last = [], scale + 1 == c["scales"]
                if scale == 0:
                    layers.append(LogitTransform(c["logit_alpha"]))
                for _ in range(c["steps"] + 1 if last else c["steps"]):
                    step(layers, (1, ch, h, w), ch)  # checkerboard masks
                if not last:
                    layers.append(Squeeze())
                    ch, h, w = 4 * ch, h // 2, w // 2
                    for _ in range(c["steps"]):
                        step(layers, (1, ch, 1, 1), ch)  # channel masks
                    ch -= ch // 2
                stages.append(Chain(layers))
            self.flow = MultiScale(stages)
        else:
            raise ValueError(f"to_torch.py: unknown flow builder {b}")

    def log_prob(self, u):
        z, log_det = self.flow(u)
        z = z.flatten(1)
        if self.logistic:
            prior = (-z - 2 * F.softplus(-z)).sum(1)
        else:
            prior = (-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)).sum(1)
        return prior + log_det


BUILDERS = {
    "made": lambda c: MADE(c["dims"], c["hidden"], c["levels"], c["order"]),
    "vae": lambda c: VAE(c["data_dim"], c["hidden"], c["latent_dim"], c["decoder"]),
    "realnvp2d": lambda c: RealNVP2D(c["layers"], c["hidden"]),
    "nice": Flow,
    "realnvp": Flow,
    "realnvp multi-scale flow": Flow,
    "glow-style multi-scale flow": Flow,
    "pixelcnn": lambda c: PixelCNN(c["levels"], c["channels"], c["blocks"], c["height"], c["width"], c["gated"]),
    "ddpm": DDPM,
    "rnn": RNNLM,
    "transformer": Transformer,
    "ConvGenerator": lambda c: ConvGenerator(c["latent"], c["channels"], c["width"]),
    "ConvDiscriminator": lambda c: ConvDiscriminator(c["channels"], c["width"]),
}

def build(meta):
    """The PyTorch twin of a checkpoint's model. Class-conditional configs ("classes" > 0, the conditional
    chapter's PixelCNN, VAE and DDPM) are not rebuilt yet: said, rather than built without their class terms."""
    c = meta["config"]
    net = c.get("net") if isinstance(c.get("net"), dict) else {}
    classes = c.get("classes", 0) or net.get("classes", 0)
    if classes:
        raise SystemExit(f"to_torch.py: {meta['model']} with classes = {classes} (class-conditional) has no PyTorch twin yet")
    return BUILDERS[meta["model"]](c)


# (checkpoint stem, test file stem): what dgm_interop export writes
MODELS = [("vae", "vae"), ("made", "made"), ("realnvp2d", "realnvp2d"), ("pixelcnn", "pixelcnn"), ("pixelcnn_gated", "pixelcnn_gated"),
          ("nice", "nice"), ("realnvp", "realnvp"), ("image_flow", "image_flow"), ("glow", "glow"),
          ("ddpm", "ddpm"), ("ddpm_unet", "ddpm_unet"), ("dcgan_generator", "dcgan"), ("dcgan_discriminator", "dcgan"),
          ("transformer", "transformer"), ("lstm", "lstm"), ("gru", "gru")]


def figures(model, kind, test):
    """PyTorch's and dgm's numbers on the test inputs, and what they are."""
    t = {k: torch.from_numpy(v.copy()) for k, v in test.items()}
    if kind == "vae":
        return model.elbo(t["x"], t["eps"]), test["elbo"], "ELBO (dgm's noise)"
    if kind == "ddpm":
        return model.eps_pred(t["x0"], t["eps"], t["t"]), test["eps_pred"], "eps_theta(x_t, t) (x_t from the schedule)"
    if kind == "ConvGenerator":
        return model(t["z"]), test["g_of_z"], "G(z)"
    if kind == "ConvDiscriminator":
        return model(t["x"]), test["d_of_x"], "D(x)"
    if isinstance(model, Flow):
        return model.log_prob(t["x"]), test["log_prob"], "log p(u), u dequantized"
    return model.log_prob(t["x"]), test["log_prob"], "log p(x)"


def close(ours, theirs):
    """The largest difference relative to max(|value|, the mean |value|): the bar is 1e-4."""
    ours, theirs = np.asarray(ours, np.float64).ravel(), np.asarray(theirs, np.float64).ravel()
    scale = np.maximum(np.abs(theirs), np.mean(np.abs(theirs)))
    return float(np.max(np.abs(ours - theirs) / scale))


def write_torch_weights(folder, tag, test_stem, meta, test, dgm_weights):
    """A PyTorch-initialised model of the same config: its state_dict as safetensors, the JSON dgm rebuilds it
    from, and PyTorch's figures on the test inputs (what dgm must reproduce after loading). Buffers (MADE's and
    PixelCNN's masks) are the architecture's, so they are dgm's; every parameter is PyTorch's own."""
    torch.manual_seed(1234)
    model = build(meta)
    for name, buffer in model.named_buffers():
        buffer.copy_(torch.from_numpy(dgm_weights[name].copy()))
    model.eval()
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    with torch.no_grad():
        ours, _, _ = figures(model, meta["model"], test)
    write_safetensors(f"{folder}/{tag}.torch.safetensors", state, {"written_by": "scripts/to_torch.py"})
    with open(f"{folder}/{tag}.torch.json", "w") as f:
        json.dump({"tag": tag, "model": meta["model"], "config": meta["config"], "test": test_stem}, f)
    write_safetensors(f"{folder}/{tag}.torch_figures.safetensors", {"figure": ours.numpy().astype(np.float32)}, {})


def check_import(folder):
    """dgm's figures on PyTorch's weights (dgm_interop import) against PyTorch's own."""
    results = []
    for tag, _ in MODELS:
        theirs, _ = read_safetensors(f"{folder}/{tag}.torch_figures.safetensors")
        ours, _ = read_safetensors(f"{folder}/{tag}.dgm_figures.safetensors")
        rel = close(ours["figure"], theirs["figure"])
        ok = rel <= 1e-4
        results.append(ok)
        print(f"{tag:20s} PyTorch's state_dict loaded into dgm: {ours['figure'].size} values, max relative difference {rel:.2e}: "
              f"{'PASS' if ok else 'FAIL'} (bar 1e-4)")
    return 0 if all(results) else 1


def compare(folder, tag, test_stem):
    with open(f"{folder}/{tag}.json") as f:
        meta = json.load(f)
    model = build(meta)
    weights, _ = read_safetensors(f"{folder}/{tag}.safetensors")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=True)
    model.eval()
    test, _ = read_safetensors(f"{folder}/{test_stem}_test.safetensors")
    with torch.no_grad():
        ours, theirs, what = figures(model, meta["model"], test)
    ours = ours.numpy().astype(np.float64).ravel()
    theirs = theirs.astype(np.float64).ravel()
    rel = close(ours, theirs)  # relative to each value, or to the values' scale where a value is near zero (a pixel)
    ok = rel <= 1e-4
    print(f"{tag:20s} {meta['model']:18s} {len(weights):3d} tensors loaded strictly; {what}, {len(theirs)} values: "
          f"mean dgm {theirs.mean():.6f}, PyTorch {ours.mean():.6f}, max relative difference {rel:.2e}: "
          f"{'PASS' if ok else 'FAIL'} (bar 1e-4)")
    print(f"           config {json.dumps(meta['config'])[:100]}; data: {meta.get('data_transform', '?')}")
    write_torch_weights(folder, tag, test_stem, meta, test, weights)
    return ok


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-import":
        return check_import(sys.argv[2])
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    print(f"PyTorch {torch.__version__}, numpy {np.__version__}")
    results = [compare(sys.argv[1], tag, stem) for tag, stem in MODELS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
