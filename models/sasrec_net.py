"""The SASRec network (Kang & McAuley 2018): causal self-attention over a user's latest items.

Inputs are left-padded so that the most recent item always sits in the last column; positions
are numbered within a ``max_len``-wide window, so the latest item always gets position
``max_len - 1`` however wide a batch is. A batch may therefore be cut to its longest row
without changing any output, which is what keeps short-sequence data (Amazon Beauty: median 6
items) cheap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape  # (B, L, D)
        qkv = self.qkv(x).view(b, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, L, D/H)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, L, D/H)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))  # (B, L, D)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, pre_ln: bool) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:  # (B, L, D)
        if self.pre_ln:
            x = x + self.drop(self.attn(self.norm1(x), allowed))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, allowed)))
        return self.norm2(x + self.drop(self.ffn(x)))


class SASRecNet(nn.Module):
    """Item ids ``0..n_items-1``; ``n_items`` itself is the padding id."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        heads: int,
        blocks: int,
        max_len: int,
        dropout: float,
        ffn_dim: int,
        pre_ln: bool,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(dim, heads, ffn_dim, dropout, pre_ln) for _ in range(blocks)
        )
        # Post-LN blocks already end normalized; pre-LN ones leave the residual stream raw.
        self.final_norm: nn.Module = nn.LayerNorm(dim) if pre_ln else nn.Identity()
        self.scale = math.sqrt(dim)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    @property
    def pad(self) -> int:
        return self.n_items

    def item_weights(self) -> torch.Tensor:
        """(I, D) output embeddings, tied to the input ones; the padding row is left out."""
        return self.item_emb.weight[: self.n_items]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Hidden state after every position: (B, L) left-padded ids -> (B, L, D)."""
        length = items.shape[1]
        if length > self.max_len:
            raise ValueError(f"input width {length} exceeds max_len {self.max_len}")
        real = items != self.pad  # (B, L)
        pos = torch.arange(self.max_len - length, self.max_len, device=items.device)  # (L,)
        x = self.item_emb(items) * self.scale + self.pos_emb(pos)  # (B, L, D)
        x = self.emb_drop(x)
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        # A padding query may see itself: a row with no allowed key would turn into NaN, and
        # real positions never attend to padding, so nothing leaks from these rows.
        diagonal = torch.eye(length, dtype=torch.bool, device=items.device)
        allowed = causal & (real[:, None, :] | diagonal)  # (B, L, L)
        allowed = allowed[:, None]  # (B, 1, L, L): broadcast over heads
        for block in self.blocks:
            x = block(x, allowed)
        return self.final_norm(x)  # (B, L, D)


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, logits kept in a buffer.

    ``F.cross_entropy(hidden @ weight.T, targets)`` allocates several (N, I) tensors per step;
    at Beauty's ~900 x 12k they are over glibc's mmap threshold, so every one comes back as
    fresh pages to fault in (170 ms a step against 100 ms here, one thread). Here the logits
    become softmax probabilities in place and then, in place again, the gradient.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,  # (N, D)
        weight: torch.Tensor,  # (I, D)
        targets: torch.Tensor,  # (N,) int64
        buffer: torch.Tensor,  # (N, I), overwritten
        exclude_rows: torch.Tensor | None,  # (E,) int64 row of each left-out logit
        exclude_items: torch.Tensor | None,  # (E,) int64 its item
    ) -> torch.Tensor:
        probs = torch.mm(hidden, weight.t(), out=buffer)  # (N, I) logits for now
        rows = torch.arange(len(targets), device=targets.device)
        target_logit = probs[rows, targets]  # (N,)
        if exclude_rows is not None and exclude_items is not None:
            probs.index_put_((exclude_rows, exclude_items), probs.new_tensor(-math.inf))
        top = probs.amax(1, keepdim=True)  # (N, 1): shifted so exp cannot overflow
        probs.sub_(top).exp_()
        total = probs.sum(1, keepdim=True)  # (N, 1)
        probs.div_(total)
        ctx.save_for_backward(hidden, weight, targets)
        ctx.probs = probs
        return (top + total.log()).squeeze(1).sub(target_logit).mean()

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None, None, None, None]:
        hidden, weight, targets = ctx.saved_tensors
        probs = ctx.probs  # (N, I)
        probs[torch.arange(len(targets), device=targets.device), targets] -= 1.0
        probs.mul_(grad / len(targets))  # d loss / d logits
        return probs @ weight, probs.t() @ hidden, None, None, None, None


class FullSoftmaxLoss:
    """Full-catalog cross-entropy with one logits buffer reused across training steps.

    The buffer grows to the largest batch seen (batch windows x max_len x items floats: about
    300 MB for Beauty at batch 128) and stays; call backward before the next forward.
    """

    def __init__(self) -> None:
        self.buffer = torch.empty(0)

    def __call__(
        self,
        hidden: torch.Tensor,  # (N, D)
        weight: torch.Tensor,  # (I, D)
        targets: torch.Tensor,  # (N,)
        exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Mean loss; ``exclude`` = (rows, items) of logits left out of each row's softmax.

        A target must not be excluded from its own row.
        """
        n, n_items = len(hidden), len(weight)
        if (
            self.buffer.numel() < n * n_items
            or self.buffer.dtype != hidden.dtype
            or self.buffer.device != hidden.device
        ):
            self.buffer = torch.empty(n * n_items, dtype=hidden.dtype, device=hidden.device)
        buffer = self.buffer[: n * n_items].view(n, n_items)
        rows, items = exclude if exclude is not None else (None, None)
        return _FullSoftmaxCE.apply(hidden, weight, targets, buffer, rows, items)


def right_aligned(
    items: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int, pad: int
) -> np.ndarray:
    """(B, width) int64 rows ``items[starts[b]:ends[b]]``, left-padded with ``pad``.

    Rows longer than ``width`` keep their last ``width`` items.
    """
    starts = np.maximum(starts, ends - width)
    lengths = ends - starts  # (B,)
    out = np.full((len(starts), width), pad, dtype=np.int64)  # (B, W)
    rows = np.repeat(np.arange(len(starts)), lengths)
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, width - np.repeat(lengths, lengths) + offset] = items[
        np.repeat(starts, lengths) + offset
    ]
    return out
