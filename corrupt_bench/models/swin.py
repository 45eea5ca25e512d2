"""A Swin-style image encoder written from the Swin Transformer paper (Liu et al., ICCV 2021).

Patch embedding (a strided convolution), stages of windowed multi-head self-attention with a
learned relative position bias, every second block shifted by half a window (with the attention
mask that keeps shifted windows from mixing across the cyclic roll), and patch merging (2x2
neighbours concatenated, normalised and projected to twice the width) between stages.
No torchvision/timm on these machines: every piece is here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, window * window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """(B * nW, window * window, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window: int) -> torch.Tensor:
    """(window^2, window^2) index into a (2 window - 1)^2 bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """(nW, window^2, window^2) additive mask: -inf-like between tokens from different regions after the roll."""
    region = torch.zeros(1, h, w, 1)
    count = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            region[:, hs, ws, :] = count
            count += 1
    labels = window_partition(region, window).squeeze(-1)  # (nW, window^2)
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_table[self.bias_index.view(-1)].view(n, n, self.heads).permute(2, 0, 1)
        bias = bias.unsqueeze(0).to(qkv.dtype)  # (1, heads, n, n)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias + mask.to(qkv.dtype)[:, None]).repeat(bw // nw, 1, 1, 1)  # (bw, heads, n, n)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """Pre-norm (shifted) window attention + MLP on a (B, H, W, C) grid of fixed size."""

    def __init__(self, dim: int, heads: int, resolution: int, window: int, shift: int, mlp_ratio: float = 4.0):
        super().__init__()
        if resolution <= window:  # the whole grid is one window: nothing to shift
            window, shift = resolution, 0
        if resolution % window:
            raise ValueError(f"token grid {resolution} is not a multiple of the window {window}")
        self.window, self.shift, self.resolution = window, shift, resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        mask = shifted_window_mask(resolution, resolution, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, self.window), self.attn_mask), self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): concatenate 2x2 neighbours, normalise, project."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinEncoder(nn.Module):
    """Images (N, 3, S, S) -> token grid (N, G, G, C_out) with G = S / (patch * 2^(stages-1))."""

    def __init__(
        self,
        image_size: int,
        embed_dim: int,
        depths: tuple[int, ...] | list[int],
        heads: tuple[int, ...] | list[int],
        window: int,
        patch: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(heads):
            raise ValueError("depths and heads need one entry per stage")
        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=patch, stride=patch)
        self.embed_norm = nn.LayerNorm(embed_dim)
        resolution, dim = image_size // patch, embed_dim
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (depth, n_heads) in enumerate(zip(depths, heads, strict=True)):
            blocks = [
                SwinBlock(dim, n_heads, resolution, window, shift=0 if k % 2 == 0 else window // 2, mlp_ratio=mlp_ratio)
                for k in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))
            if i < len(depths) - 1:
                self.merges.append(PatchMerging(dim))
                resolution, dim = resolution // 2, dim * 2
        self.norm = nn.LayerNorm(dim)
        self.grid = resolution
        self.out_dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(images).permute(0, 2, 3, 1))
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.merges):
                x = self.merges[i](x)
        return self.norm(x)
