"""Transformers over token ids: a BERT encoder and a decoder-only GPT (nanoGPT-style, one file).

* **BERT** — Devlin et al., NAACL 2019. Post-LayerNorm encoder; token + learned position + token-type
  embeddings; GELU (erf); a tanh pooler on the first token. ``bert_base`` (L=12, H=768, A=12) is
  Hugging Face's ``BertModel`` with pooler, 109,482,240 parameters; ``bert_tiny`` is BERT-Tiny (L=2,
  H=128, A=2) of Turc et al. 2019, "Well-read students learn better".
* **GPT** — Radford et al. 2019 (GPT-2): pre-LayerNorm decoder, learned positions, GELU (tanh
  approximation), causal attention, LM head tied to the token embedding. ``gpt2`` is GPT-2 small
  (124,439,808 parameters). ``gpt3_175b`` is GPT-3 175B of Brown et al. 2020, Table 2.1: 96 layers,
  d_model 12288, 96 heads of 128, context 2048, the GPT-2 vocabulary of 50257; we use dense
  attention in every layer (GPT-3 alternates dense and locally banded sparse layers, which changes
  attention MACs, not parameters): 174.6B parameters (the paper rounds to 175B). Build it only on
  ``torch.device("meta")``.

Attention is :func:`torch.nn.functional.scaled_dot_product_attention` (one fused op; no padding
masks: every sequence is full length). All tensors made inside ``forward`` (positions) are created on
the input's device, so every model runs on the meta device. With ``num_classes > 0`` BERT classifies
its pooled first token and GPT its last token (like Hugging Face's ``*ForSequenceClassification``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.activations import make_activation
from models.registry import register, token_inputs
from neurosim.errors import NeurosimError


def apply_rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) on ``x [B, H, T, hd]``, rotate-half convention.

    Pairs channel ``i`` with ``i + hd/2`` and rotates each pair by ``t * base^(-2i/hd)`` at position t.
    """
    t_len, hd = x.shape[-2], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd)
    freqs = torch.outer(torch.arange(t_len, device=x.device, dtype=torch.float32), inv_freq)  # [T, hd/2]
    cos, sin = freqs.cos().to(x.dtype), freqs.sin().to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused QKV projection.

    ``n_kv_heads < n_heads`` is grouped-query attention (Ainslie et al. 2023): K and V have fewer
    heads, each shared by ``n_heads / n_kv_heads`` query heads. ``rope`` rotates Q and K.
    ``quant_levels > 0``: a quantised attention for low-latency ANN-to-SNN conversion (issue 13; cf.
    SpikeZIP-TF's QANN, You et al., ICML 2024): signed QCFS quantisers (:class:`models.qcfs.SignedQCFS`,
    L levels a side) on Q, K and V and a QCFS on the attention probabilities, written as explicit
    ``softmax(Q K^T / sqrt(d)) V`` (non-causal only).
    """

    def __init__(self, d_model: int, n_heads: int, *, causal: bool = False, bias: bool = True,
                 dropout: float = 0.0, n_kv_heads: int | None = None, rope: bool = False, rope_base: float = 10000.0,
                 quant_levels: int = 0):
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        if d_model % n_heads or n_heads % n_kv_heads:
            raise NeurosimError(f"attention: d_model {d_model} must divide by n_heads {n_heads}, "
                                f"and n_heads by n_kv_heads {n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, d_model // n_heads
        self.causal, self.dropout, self.rope, self.rope_base = causal, dropout, rope, rope_base
        kv_dim = n_kv_heads * self.head_dim
        self.qkv = nn.Linear(d_model, d_model + 2 * kv_dim, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.split = (d_model, kv_dim, kv_dim)
        self.quant_levels = int(quant_levels)
        if self.quant_levels:
            from models.qcfs import QCFS, SignedQCFS

            if causal or rope or n_kv_heads != n_heads:
                raise NeurosimError("attention: quant_levels needs plain non-causal attention (no rope, no GQA)")
            self.q_quant, self.k_quant, self.v_quant = (SignedQCFS(self.quant_levels) for _ in range(3))
            self.p_quant = QCFS(self.quant_levels, threshold=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(self.split, dim=-1)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.rope:
            q, k = apply_rope(q, self.rope_base), apply_rope(k, self.rope_base)
        if self.n_kv_heads != self.n_heads:
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if self.quant_levels:
            q, k, v = self.q_quant(q), self.k_quant(k), self.v_quant(v)
            att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.head_dim ** -0.5, dim=-1)
            y = torch.matmul(self.p_quant(att), v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    """Position-wise feed-forward: ``Linear(d, ff) -> activation -> Linear(ff, d)``."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """A transformer layer. ``prenorm``: ``x + attn(ln(x))`` (GPT-2, ViT); else ``ln(x + attn(x))`` (BERT)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, prenorm: bool = True, causal: bool = False,
                 activation: str = "gelu", dropout: float = 0.0, bias: bool = True, norm_eps: float = 1e-5,
                 quant_levels: int = 0):
        super().__init__()
        self.prenorm = prenorm
        self.ln1 = nn.LayerNorm(d_model, eps=norm_eps)
        self.attn = SelfAttention(d_model, n_heads, causal=causal, bias=bias, dropout=dropout,
                                  quant_levels=quant_levels)
        self.drop = nn.Dropout(dropout)
        self.ln2 = nn.LayerNorm(d_model, eps=norm_eps)
        self.mlp = MLP(d_model, d_ff, activation, bias, dropout)

    def forward(self, x):
        if self.prenorm:
            x = x + self.drop(self.attn(self.ln1(x)))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.mlp(x))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """N(0, 0.02) for linear and embedding weights, zero biases (BERT, GPT-2); LayerNorm stays (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def _check_seq(t: int, max_seq_len: int, name: str) -> None:
    """Positions past the table would index out of range on CPU but pass silently on meta: check.
    (Under torch.fx tracing ``t`` is a Proxy, and the check is skipped so the model stays traceable.)"""
    if isinstance(t, int) and t > max_seq_len:
        raise NeurosimError(f"{name}: sequence length {t} exceeds max_seq_len={max_seq_len}")


# ---- BERT ------------------------------------------------------------------------------------------


class BERT(nn.Module):
    """BERT encoder. ``forward(ids [B, T])`` returns ``(hidden [B, T, d], pooled [B, d])``, or logits
    ``[B, num_classes]`` when ``num_classes > 0``."""

    def __init__(self, vocab_size: int, max_seq_len: int, type_vocab_size: int, d_model: int, n_layers: int,
                 n_heads: int, d_ff: int, dropout: float, num_classes: int, activation: str):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_seq_len, d_model)
        self.type_emb = nn.Embedding(type_vocab_size, d_model)
        self.ln_emb = nn.LayerNorm(d_model, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, prenorm=False, activation=activation, dropout=dropout, norm_eps=1e-12)
            for _ in range(n_layers))
        self.pooler = nn.Linear(d_model, d_model)
        self.pooler_act = nn.Tanh()
        self.classifier = nn.Linear(d_model, num_classes) if num_classes > 0 else None
        init_weights(self)

    def forward(self, ids: torch.Tensor):
        _check_seq(ids.shape[1], self.max_seq_len, "bert")
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos) + self.type_emb(torch.zeros_like(ids))
        x = self.drop(self.ln_emb(x))
        for block in self.blocks:
            x = block(x)
        pooled = self.pooler_act(self.pooler(x[:, 0]))
        if self.classifier is not None:
            return self.classifier(self.drop(pooled))
        return x, pooled


@register("bert_base", family="transformer", inputs=token_inputs(128), reference="HF BertModel bert-base-uncased",
          description="BERT-base with pooler (Devlin et al. 2019): 109.5M parameters")
@register("bert_tiny", family="transformer", inputs=token_inputs(128), d_model=128, n_layers=2, n_heads=2,
          d_ff=512,
          description="BERT-Tiny, L=2 H=128 A=2 (Turc et al. 2019); set num_classes to classify")
def bert(vocab_size: int = 30522, max_seq_len: int = 512, type_vocab_size: int = 2, d_model: int = 768,
         n_layers: int = 12, n_heads: int = 12, d_ff: int = 3072, dropout: float = 0.1, num_classes: int = 0,
         activation: str = "gelu") -> nn.Module:
    """BERT encoder (Devlin et al. 2019); defaults are BERT-base with pooler."""
    return BERT(vocab_size, max_seq_len, type_vocab_size, d_model, n_layers, n_heads, d_ff, dropout, num_classes,
                activation)


# ---- GPT -------------------------------------------------------------------------------------------


class GPT(nn.Module):
    """Decoder-only LM. ``forward(ids [B, T])`` returns logits ``[B, T, vocab]``, or ``[B, num_classes]``
    from the last position when ``num_classes > 0``."""

    def __init__(self, vocab_size: int, max_seq_len: int, d_model: int, n_layers: int, n_heads: int, d_ff: int,
                 dropout: float, bias: bool, tie_embeddings: bool, num_classes: int, activation: str):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_seq_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, prenorm=True, causal=True, activation=activation, dropout=dropout,
                  bias=bias)
            for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        if num_classes > 0:
            self.head = nn.Linear(d_model, num_classes)
        else:
            self.head = nn.Linear(d_model, vocab_size, bias=False)
            if tie_embeddings:
                self.head.weight = self.tok_emb.weight  # Press & Wolf 2017; counted once
        init_weights(self)
        self.num_classes = num_classes

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_seq(ids.shape[1], self.max_seq_len, "gpt")
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        if self.num_classes > 0:
            x = x[:, -1]
        return self.head(x)


@register("gpt2", family="transformer", inputs=token_inputs(1024), reference="HF GPT2LMHeadModel gpt2 (small)",
          description="GPT-2 small (Radford et al. 2019), tied embeddings: 124.4M parameters")
@register("gpt_tiny", family="transformer", inputs=token_inputs(64), vocab_size=256, max_seq_len=128, d_model=64,
          n_layers=2, n_heads=4, d_ff=256, dropout=0.0,
          description="tiny byte-level GPT: 2 layers, width 64, context 128")
@register("gpt3_175b", family="transformer", inputs=token_inputs(2048), reference="GPT-3 175B (Brown et al. 2020)",
          max_seq_len=2048, d_model=12288, n_layers=96, n_heads=96, d_ff=4 * 12288, dropout=0.0,
          description="GPT-3 175B (Brown et al. 2020, Table 2.1), dense attention; build on meta only")
def gpt(vocab_size: int = 50257, max_seq_len: int = 1024, d_model: int = 768, n_layers: int = 12, n_heads: int = 12,
        d_ff: int = 3072, dropout: float = 0.1, bias: bool = True, tie_embeddings: bool = True, num_classes: int = 0,
        activation: str = "gelu_tanh") -> nn.Module:
    """Decoder-only GPT (Radford et al. 2019); defaults are GPT-2 small with tied embeddings."""
    return GPT(vocab_size, max_seq_len, d_model, n_layers, n_heads, d_ff, dropout, bias, tie_embeddings, num_classes,
               activation)
