"""STARK's encoder-decoder transformer (DETR style, post-norm, one target query).

Source: STARK_FACTS.md section 5 (official ``lib/models/stark/transformer.py``): d_model 256, 8 heads, FFN 2048
with ReLU, dropout 0.1 (inactive in eval), 6 encoder and 6 decoder layers, post-norm, no final encoder norm, a
final decoder LayerNorm. Positions are added to queries and keys, never to values; the decoder target starts
at zeros and the query embedding is its positional term.

Sequences are (L, B, C) (token-major, like ``nn.MultiheadAttention`` without ``batch_first``); key padding masks
are (B, L) bool with True = ignore.
"""
import copy

import torch
from torch import nn


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: ``src = LN1(src + SA(src + pos, src + pos, src)); src = LN2(src + FFN(src))``."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = nn.ReLU()  # a module (no parameters) so an engine can fuse it into linear1
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src, key_padding_mask, pos):
        q = k = src + pos
        src = self.norm1(src + self.dropout1(
            self.self_attn(q, k, value=src, key_padding_mask=key_padding_mask, need_weights=False)[0]))
        return self.norm2(src + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(src))))))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, cross-attention to the memory, FFN, each followed by a LayerNorm."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = nn.ReLU()
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt, memory, memory_key_padding_mask, pos, query_pos):
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, value=tgt, need_weights=False)[0]))
        tgt = self.norm2(tgt + self.dropout2(self.multihead_attn(
            query=tgt + query_pos, key=memory + pos, value=memory,
            key_padding_mask=memory_key_padding_mask, need_weights=False)[0]))
        return self.norm3(tgt + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(tgt))))))


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer` (no final norm for the post-norm variant)."""

    def __init__(self, layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, src, key_padding_mask, pos):
        for layer in self.layers:
            src = layer(src, key_padding_mask, pos)
        return src


class Decoder(nn.Module):
    """A stack of :class:`DecoderLayer` followed by a final LayerNorm (``decoder.norm``)."""

    def __init__(self, layer, num_layers, d_model):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt, memory, memory_key_padding_mask, pos, query_pos):
        for layer in self.layers:
            tgt = layer(tgt, memory, memory_key_padding_mask, pos, query_pos)
        return self.norm(tgt)


class Transformer(nn.Module):
    """Encoder over the concatenated [templates; search] tokens and a decoder with ``Nq`` target queries.

    ``forward(src, key_padding_mask, query_embed, pos)``:
        src (L, B, C) features, key_padding_mask (B, L) bool, query_embed (Nq, C), pos (L, B, C).
    Returns ``(hs, memory)``: hs (1, B, Nq, C) the normalised decoder output, memory (L, B, C) the encoder output.
    """

    def __init__(self, d_model=256, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.d_model = d_model
        self.encoder = Encoder(EncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers)
        self.decoder = Decoder(DecoderLayer(d_model, nhead, dim_feedforward, dropout), num_decoder_layers,
                               d_model)

    def forward(self, src, key_padding_mask, query_embed, pos):
        memory = self.encoder(src, key_padding_mask, pos)
        batch = src.shape[1]
        query_pos = query_embed.unsqueeze(1).repeat(1, batch, 1)
        tgt = torch.zeros_like(query_pos)
        hs = self.decoder(tgt, memory, key_padding_mask, pos, query_pos)
        return hs.transpose(0, 1).unsqueeze(0), memory


def build_transformer(hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6, dim_feedforward=2048, dropout=0.1):
    """Build the STARK transformer with the official defaults (STARK_FACTS.md section 1)."""
    return Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout)
