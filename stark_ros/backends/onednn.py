"""oneDNN matrix products for the fp32 transformer and MLPs of ``torch-fast`` on x86 CPUs.

Why: PyTorch's CPU ``nn.Linear`` calls MKL's sgemm. On AMD CPUs MKL does not use its AVX-512 kernels, and
on the 2-core EPYC of ``bench/README.md`` a 528x256 @ 256x2048 product runs at about 200 GFLOP/s through
``F.linear`` and about 460 GFLOP/s through oneDNN's inner product (the kernel inductor uses,
``torch.ops.mkldnn._linear_pointwise``). STARK-ST50's transformer spends about 60% of its time in such
products (STARK_FACTS.md section 5: 6+6 layers, d 256, FFN 2048, 528 tokens).

The modules below replace ``nn.Linear`` and ``nn.MultiheadAttention`` in a private copy of the network. The
arithmetic is the same (fp32, same formula), only the kernels and their summation order change, so outputs
differ from eager by float rounding (about 1e-6 relative); the oracle tolerances hold
(``test/test_backends.py``).
"""
import torch
from torch import nn
import torch.nn.functional as F


#: Below this many rows ``OneDnnLinear`` uses ``F.linear`` (measured: 5 us against 15 us for 1 x 256 x 256).
SMALL_BATCH = 16


def _linear_op():
    return getattr(getattr(torch.ops, 'mkldnn', None), '_linear_pointwise', None)


def onednn_linear_available(device):
    """True when oneDNN's fp32 inner product runs on ``device`` (a CPU build with mkldnn) and matches F.linear.

    Probed once per call with a small product, so a build without the op, or one whose kernel refuses fp32,
    falls back to the stock modules instead of failing at the first frame.
    """
    device = torch.device(device)
    if device.type != 'cpu' or not torch.backends.mkldnn.is_available() or _linear_op() is None:
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=gen) for s in ((5, 8), (3, 8), (3,)))
        y = _linear_op()(x, w, b, 'none', [], '')
        return bool(torch.allclose(y, F.linear(x, w, b), atol=1e-5))
    except RuntimeError:
        return False


class OneDnnLinear(nn.Module):
    """Drop-in for ``nn.Linear`` (fp32, CPU): ``y = x @ W^T + b`` by oneDNN's inner product.

    Args:
        weight: (out_features, in_features) float32.
        bias: (out_features,) float32 or None.
        relu: apply ReLU in the same kernel (oneDNN post-op).

    ``forward(x)``: x (..., in_features) -> (..., out_features), float32.
    """

    def __init__(self, weight, bias=None, relu=False):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().float().contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().contiguous(), requires_grad=False)
        self.attr = 'relu' if relu else 'none'
        self._packed = None
        self._op = _linear_op()

    @classmethod
    def from_linear(cls, linear, relu=False):
        """Copy the parameters of an ``nn.Linear``."""
        return cls(linear.weight, linear.bias, relu)

    @property
    def out_features(self):
        return self.weight.shape[0]

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1]).contiguous()
        if flat.shape[0] < SMALL_BATCH:
            # a few rows (the decoder's target query): the dispatch cost of oneDNN exceeds the product
            y = F.linear(flat, self.weight, self.bias)
            y = F.relu(y) if self.attr == 'relu' else y
        else:
            y = self._op(flat, self._packed_weight(flat.shape[0]), self.bias, self.attr, [], '')
        return y.view(*x.shape[:-1], self.out_features)

    def _packed_weight(self, rows):
        # oneDNN's blocked layout, chosen for the first batch size seen (any batch size can use it)
        if self._packed is None:
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, rows)
        return self._packed


class PackedAttention(nn.Module):
    """Drop-in for ``nn.MultiheadAttention`` (sequence-first, inference only) on oneDNN products and SDPA.

    Same call as the module it replaces: ``forward(query, key, value, key_padding_mask=None, need_weights=False)``
    with query (Lq, B, C), key and value (Lk, B, C), key_padding_mask (B, Lk) bool (True = ignore); returns
    ``(output (Lq, B, C), None)``. When ``query is key`` (the encoder's self-attention, ``q = k = src + pos``)
    the query and key projections run as one (2C x C) product.

    Formula (Vaswani et al. 2017, the ``nn.MultiheadAttention`` parameterisation used by STARK_FACTS.md
    section 5): ``softmax((x_q Wq^T + bq)(x_k Wk^T + bk)^T / sqrt(C / heads)) (x_v Wv^T + bv) Wo^T + bo``
    per head.
    """

    def __init__(self, mha):
        super().__init__()
        if mha.in_proj_weight is None or mha.bias_k is not None or mha.add_zero_attn or mha.batch_first:
            raise ValueError('PackedAttention supports the STARK form of nn.MultiheadAttention only '
                             '(packed in_proj, no bias_k/bias_v, no add_zero_attn, sequence first)')
        c = mha.embed_dim
        self.num_heads = mha.num_heads
        w, b = mha.in_proj_weight, mha.in_proj_bias
        self.qk_proj = OneDnnLinear(w[:2 * c], None if b is None else b[:2 * c])
        self.q_proj = OneDnnLinear(w[:c], None if b is None else b[:c])
        self.k_proj = OneDnnLinear(w[c:2 * c], None if b is None else b[c:2 * c])
        self.v_proj = OneDnnLinear(w[2 * c:], None if b is None else b[2 * c:])
        self.out_proj = OneDnnLinear.from_linear(mha.out_proj)

    def _heads(self, x):
        length, batch, channels = x.shape
        return x.view(length, batch, self.num_heads, channels // self.num_heads).permute(1, 2, 0, 3)

    def _few_queries(self, query, key, value, key_padding_mask):
        """Cross-attention of a few queries (the decoder's target query) without projecting the keys and values.

        Per head h with Wk_h, Wv_h (D x C) and biases: ``q_h . (Wk_h k_j + bk_h) = (Wk_h^T q_h) . k_j + const``
        (the constant cancels in the softmax), and ``sum_j a_j (Wv_h v_j + bv_h) = Wv_h (sum_j a_j v_j) + bv_h``
        (the weights a_j sum to 1). Same value as the projected form, O(Lk C) instead of O(Lk C^2) per head.
        """
        lq, batch, channels = query.shape
        heads = self.num_heads
        dim = channels // heads
        q = self.q_proj(query).view(lq, batch, heads, dim)
        u = torch.einsum('lbhd,hdc->bhlc', q, self.k_proj.weight.view(heads, dim, channels)) * dim ** -0.5
        scores = torch.einsum('bhlc,kbc->bhlk', u, key)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float('-inf'))
        context = torch.einsum('bhlk,kbc->bhlc', scores.softmax(dim=-1), value)
        out = torch.einsum('bhlc,hdc->lbhd', context, self.v_proj.weight.view(heads, dim, channels))
        if self.v_proj.bias is not None:
            out = out + self.v_proj.bias.view(heads, dim)
        return self.out_proj(out.reshape(lq, batch, channels))

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False):
        if need_weights:
            raise ValueError('PackedAttention does not return attention weights')
        if query.shape[0] < SMALL_BATCH and query is not key:
            return self._few_queries(query, key, value, key_padding_mask), None
        if query is key:
            q, k = self.qk_proj(query).chunk(2, dim=-1)
        else:
            q, k = self.q_proj(query), self.k_proj(key)
        v = self.v_proj(value)
        mask = None
        if key_padding_mask is not None and bool(key_padding_mask.any()):
            mask = ~key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), attn_mask=mask)
        length, batch = query.shape[:2]
        out = out.permute(2, 0, 1, 3).reshape(length, batch, -1)
        return self.out_proj(out), None


def use_onednn_products(module):
    """Replace, in place, every ``nn.Linear`` and ``nn.MultiheadAttention`` under ``module``; returns the count.

    Only for fp32 inference on a CPU where :func:`onednn_linear_available` holds. A layer with a ``linear1``
    followed by an ``activation`` ``nn.ReLU`` (the transformer's FFN) gets the ReLU fused into ``linear1``.
    """
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.MultiheadAttention):
            setattr(module, name, PackedAttention(child))
            count += 1
        elif isinstance(child, nn.Linear):
            setattr(module, name, OneDnnLinear.from_linear(child))
            count += 1
        else:
            count += use_onednn_products(child)
    if isinstance(getattr(module, 'linear1', None), OneDnnLinear) and isinstance(getattr(module, 'activation', None),
                                                                                nn.ReLU):
        module.linear1.attr = 'relu'
        module.activation = nn.Identity()
    return count


def _conv_op():
    return getattr(getattr(torch.ops, 'mkldnn', None), '_convolution_pointwise', None)


def _pair(value):
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


class OneDnnConv(nn.Module):
    """Drop-in for an fp32 ``nn.Conv2d`` (CPU, zero padding): oneDNN convolution with fused post-ops.

    The weight is re-laid out once per input shape into oneDNN's blocked format
    (``torch.ops.mkldnn._reorder_convolution_weight``) and kept in a cache that is not part of the state dict.

    ``forward(x, residual=None)``: x (B, C_in, H, W) float32; with ``residual`` (the output's shape) the kernel
    computes ``conv(x) + residual`` (a ResNet block's skip connection) before the optional ReLU. Output
    (B, C_out, H', W') float32 in channels-last memory format.

    Args:
        conv: the convolution (batch norms already folded into it).
        relu: apply ReLU in the same kernel.
        relu6: apply ReLU6 (``hardtanh`` 0..6) in the same kernel instead.
    """

    def __init__(self, conv, relu=False, relu6=False):
        super().__init__()
        if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
            raise ValueError('OneDnnConv needs numeric zero padding, got %r / %r' % (conv.padding_mode, conv.padding))
        self.weight = nn.Parameter(conv.weight.detach().float().contiguous(memory_format=torch.channels_last),
                                   requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().float(), requires_grad=False)
        self.padding, self.stride = _pair(conv.padding), _pair(conv.stride)
        self.dilation, self.groups = _pair(conv.dilation), conv.groups
        self.attr = 'hardtanh' if relu6 else 'relu' if relu else 'none'
        self.scalars = [0.0, 6.0] if relu6 else []
        self._packed = {}
        self._op = _conv_op()

    def _packed_weight(self, shape):
        packed = self._packed.get(shape)
        if packed is None:
            packed = torch.ops.mkldnn._reorder_convolution_weight(self.weight, self.padding, self.stride,
                                                                  self.dilation, self.groups, list(shape))
            self._packed[shape] = packed
        return packed

    def forward(self, x, residual=None):
        x = x.float().contiguous(memory_format=torch.channels_last)
        weight = self._packed_weight(tuple(x.shape))
        geometry = (self.padding, self.stride, self.dilation, self.groups)
        if residual is None:
            return self._op(x, weight, self.bias, *geometry, self.attr, self.scalars, '')
        residual = residual.contiguous(memory_format=torch.channels_last)
        return self._op.binary(x, residual, weight, self.bias, *geometry, 'add', None,
                               self.attr if self.attr != 'none' else None, self.scalars, '')


class OneDnnBottleneck(nn.Module):
    """A folded ResNet bottleneck (:class:`stark_ros.model.backbone.Bottleneck`) as three fused oneDNN kernels.

    ``relu(conv1 x) -> relu(conv2 .) -> relu(conv3 . + identity)``, identity = x or the downsample conv of x
    (STARK_FACTS.md section 2: torchvision ResNet v1.5 block). Shapes as the original block.
    """

    def __init__(self, block):
        super().__init__()
        for name in ('bn1', 'bn2', 'bn3'):
            if not isinstance(getattr(block, name), nn.Identity):
                raise ValueError('fold the batch norms before converting a bottleneck (%s is left)' % name)
        self.conv1 = OneDnnConv(block.conv1, relu=True)
        self.conv2 = OneDnnConv(block.conv2, relu=True)
        self.conv3 = OneDnnConv(block.conv3, relu=True)
        self.downsample = None
        if block.downsample is not None:
            convs = [m for m in block.downsample if not isinstance(m, nn.Identity)]
            if len(convs) != 1 or not isinstance(convs[0], nn.Conv2d):
                raise ValueError('unexpected downsample branch %r' % block.downsample)
            self.downsample = OneDnnConv(convs[0])

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x)), residual=identity)


class OneDnnMBConv(nn.Module):
    """A folded EfficientNet-Lite block (:class:`stark_ros.model.efficientnet.MBConvBlock`) as fused oneDNN kernels.

    ``relu6(expand x) -> relu6(depthwise .) -> project . [+ x]`` (the residual added inside the projection
    kernel). The batch norms and the 'SAME' padding must be folded first (:func:`.folding.fold_batchnorms`).
    Shapes as the original block.
    """

    def __init__(self, block):
        super().__init__()
        left = [name for name in ('_bn0', '_bn1', '_bn2') if hasattr(block, name)
                and not isinstance(getattr(block, name), nn.Identity)]
        if left or block._pad is not None:
            raise ValueError('fold the batch norms and the padding before converting a block (%s)'
                             % ', '.join(left or ['_pad']))
        self.expand = OneDnnConv(block._expand_conv, relu6=True) if hasattr(block, '_expand_conv') else None
        self.depthwise = OneDnnConv(block._depthwise_conv, relu6=True)
        self.project = OneDnnConv(block._project_conv)
        self.residual = block.residual

    def forward(self, x):
        y = x if self.expand is None else self.expand(x)
        return self.project(self.depthwise(y), residual=x if self.residual else None)


def use_onednn_convolutions(module):
    """Replace, in place, the fp32 convolutions under ``module`` by oneDNN kernels; returns the count replaced.

    Batch norms must be folded first (:func:`stark_ros.backends.folding.fold_batchnorms`). Bottlenecks become
    :class:`OneDnnBottleneck`, EfficientNet blocks :class:`OneDnnMBConv` (and the stem gets its ReLU6 fused); a convolution followed (after folded-away ``nn.Identity`` layers) by an
    ``nn.ReLU`` in a ``nn.Sequential``, or by the ``relu`` module of a ResNet stem, gets the ReLU fused;
    any other ``nn.Conv2d`` becomes a plain :class:`OneDnnConv`. Only for fp32 inference on a CPU where
    :func:`onednn_linear_available` holds.
    """
    from ..model.backbone import Bottleneck, ResNetBody
    from ..model.efficientnet import EfficientNetLite, MBConvBlock

    if isinstance(module, nn.Conv2d):
        raise TypeError('pass the module that holds the convolution (it is replaced in its parent)')
    count = 0
    if isinstance(module, ResNetBody) and isinstance(module.relu, nn.ReLU) and isinstance(module.bn1, nn.Identity):
        module.conv1, module.relu = OneDnnConv(module.conv1, relu=True), nn.Identity()
        count += 1
    if (isinstance(module, EfficientNetLite) and isinstance(module._bn0, nn.Identity)
            and not hasattr(module, '_conv_head')):    # the stem's ReLU6 module is shared with the head
        module._conv_stem, module.activation = OneDnnConv(module._conv_stem, relu6=True), nn.Identity()
        count += 1
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for i, name in enumerate(names):
            if not isinstance(module._modules[name], nn.Conv2d):
                continue
            j = i + 1
            while j < len(names) and isinstance(module._modules[names[j]], nn.Identity):
                j += 1
            relu = j < len(names) and isinstance(module._modules[names[j]], nn.ReLU)
            module._modules[name] = OneDnnConv(module._modules[name], relu=relu)
            if relu:
                module._modules[names[j]] = nn.Identity()
            count += 1
    for name, child in list(module.named_children()):
        if isinstance(child, Bottleneck):
            setattr(module, name, OneDnnBottleneck(child))
            count += 3 + (child.downsample is not None)
        elif isinstance(child, MBConvBlock):
            setattr(module, name, OneDnnMBConv(child))
            count += 2 + hasattr(child, '_expand_conv')
        elif isinstance(child, nn.Conv2d):
            setattr(module, name, OneDnnConv(child))
            count += 1
        else:
            count += use_onednn_convolutions(child)
    return count
