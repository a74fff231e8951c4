"""``openvino`` backend: the network compiled by the OpenVINO CPU runtime (PyPI ``openvino``), fp32 or bf16.

The network is converted as three models: the backbone at the template size (128, batch 1), the backbone at
the search size (320) and transformer + heads over the fixed token sequence ``[templates; search]``, the last two
with a dynamic batch axis (B search regions of B targets, :data:`.export_onnx.BATCH_AXES`). By default the
conversion goes through the same in-memory ONNX export as :mod:`.export_onnx` (fast, and the graph users
deploy); ``source='torch'`` uses ``openvino.convert_model`` on the torch modules instead (traced at batch 2 with
the batch axis declared dynamic). Compiled with ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS`` = the
cores available, and ``INFERENCE_PRECISION_HINT`` 'f32' (set explicitly: on AMX machines OpenVINO's own default
would be bf16; on avx512_bf16 ones too) or 'bf16'. Tensors in and out are torch tensors on the CPU, so the tracker
does not change.

Batch sizes: each batched graph is compiled twice. Batch 1 (one target, and every target of a tracker that
loops) runs a static copy of it reshaped to B = 1, as fast as the batch-1 graphs before the batch axis was
dynamic: compiling the dynamic model costs a single target 15-30% per frame here (lite0, 2 threads: backbone +
head 61.5 against 46.5 ms, interleaved). B >= 2 runs the dynamic model, compiled on the first batched call
(about 0.4 s for lite0, 0.9 s for ST50, once) and kept; the alternative of one static model per batch size was
3-10% faster at 2-8 targets in the same measurement, but costs a compilation (0.5 s lite0, 1.3 s ST50) on the
first image with each new number of targets and the memory of one compiled model per size (about 250 MB each for
ST50). On this 2-core CPU OpenVINO's batch-1 calls already keep both cores busy, so a batch saves little: see the
README's **Several targets** figures. ``cache_dir`` (OpenVINO's ``CACHE_DIR``) stores each compiled model under a
hash of the model itself (its shapes included), so a cache written by batch-1 graphs is never loaded for the
dynamic ones (``test/test_multi_tracker.py`` checks it).

Numerical contract: 'fp32' reproduces the oracle free and forced runs with the core tolerances (boxes 1e-2 px,
scores 1e-4), and a batch gives each target the boxes of its batch-1 run within 1e-4 search-region px
(``test/test_multi_tracker.py``). 'bf16' (needs a CPU with native bf16: avx512_bf16 or AMX; OpenVINO reports
'BF16' in ``OPTIMIZATION_CAPABILITIES``) is bounded against the fp32 run on the oracle forced runs in
``test/test_backends.py`` with the same bounds as torch-fast bf16 (max 2 px, p95 1.3 px, mean 0.6 px, scores
0.02). Measured: ST50 max 1.30 px (p95 1.03, mean 0.38, scores 0.005), Lightning max 1.35 px (p95 0.85, mean 0.26).
A bf16 batch runs other kernels than bf16 batch 1, so its boxes differ from the batch-1 ones by bf16 rounding,
not float32 rounding (bounded in ``test/test_multi_tracker.py`` like bf16 against fp32).
"""
import numpy as np
import torch

from .common import BackboneGraph, Engine, HeadGraph, concat_tokens, default_threads, example_tokens, \
    resolve_precision, token_count
from .export_onnx import BATCH_AXES, TRACE_BATCH

_OV_PRECISION = {'fp32': 'f32', 'bf16': 'bf16'}


def openvino_supports_bf16(core=None):
    """True if OpenVINO's CPU plugin can run bf16 natively on this machine."""
    import openvino
    core = core or openvino.Core()
    try:
        return 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    except RuntimeError:
        return False


def with_batch(model, batch):
    """A copy of the OpenVINO ``model`` with every dynamic input size set to ``batch`` (an int: a static model).

    Raises:
        RuntimeError: OpenVINO cannot reshape the model.
    """
    import openvino
    model = model.clone()
    model.reshape({arg.get_any_name(): openvino.PartialShape([size if size.is_static else openvino.Dimension(batch)
                                                              for size in arg.get_partial_shape()])
                   for arg in model.inputs})
    return model


class OpenVINOEngine(Engine):
    """Three compiled OpenVINO models behind the engine interface (plus the dynamic-batch ones once a batch of
    several targets comes).

    Args:
        network: the loaded network, on the CPU (not modified).
        device: must be the CPU.
        precision: None/'fp32', 'bf16' or 'auto' (bf16 where native).
        template_size: template patch side, pixels.
        threads: ``INFERENCE_NUM_THREADS`` (default: the cores available to this process).
        cache_dir: OpenVINO model cache directory (``CACHE_DIR``), to skip recompilation across runs.
        source: 'onnx' (default) or 'torch' (``openvino.convert_model`` on the torch modules).

    Attributes:
        batching: True: the search backbone and the head take B >= 1 search regions (both sources convert them with
            a dynamic batch axis).
        compiled: the batch-1 compiled models by graph name ('backbone_template', 'backbone_search', 'head').

    Raises:
        ValueError: not the CPU, an unsupported precision, an unknown source.
    """

    backend = 'openvino'

    def __init__(self, network, device=None, precision=None, template_size=128, threads=None, cache_dir=None,
                 source='onnx'):
        import openvino
        device = torch.device(device if device is not None else 'cpu')
        if device.type != 'cpu':
            raise ValueError('the openvino backend runs on the CPU only (got device %s)' % device)
        if next(network.parameters()).device.type != 'cpu':
            raise ValueError('the openvino backend needs the network on the CPU')
        core = openvino.Core()
        precision = resolve_precision(precision, device, supported=('fp32', 'bf16'))
        if precision == 'bf16' and not openvino_supports_bf16(core):
            raise ValueError("OpenVINO cannot run bf16 on this CPU (no native bf16); use precision 'fp32'")
        super().__init__(network, device, precision, template_size)
        self.fixed_template_size = self.template_size     # fixed-shape graphs
        self.threads = int(threads or default_threads())
        self.source = source
        config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_NUM_THREADS': self.threads,
                  'INFERENCE_PRECISION_HINT': _OV_PRECISION[precision]}
        if cache_dir:
            config['CACHE_DIR'] = str(cache_dir)
        models = self._convert(openvino, core, network, source)
        self.batching = all(models[key].is_dynamic() for key in BATCH_AXES)
        self._core, self._config = core, config
        # batch 1 on static copies (as fast as before the batch axis existed); B >= 2 on the dynamic models,
        # compiled on first use (module docstring: measured choice)
        self._dynamic = {key: models[key] for key in BATCH_AXES} if self.batching else {}
        self._batched = {}
        self.compiled = {key: core.compile_model(with_batch(model, 1) if model.is_dynamic() else model, 'CPU', config)
                         for key, model in models.items()}
        self.requests = {key: compiled.create_infer_request() for key, compiled in self.compiled.items()}

    def _convert(self, openvino, core, network, source):
        if source == 'onnx':
            from .export_onnx import export_graphs
            models, _ = export_graphs(network, self.template_size)
            return {key: core.read_model(model=data) for key, data in models.items()}
        if source != 'torch':
            raise ValueError("source must be 'onnx' or 'torch', got %r" % (source,))
        z_img, z_mask, x_img, x_mask, feat, mask, pos = example_tokens(network, self.template_size)
        head = HeadGraph(network, token_count(self.template_size)).eval()
        tokens, channels = feat.shape[0], feat.shape[2]
        f32, boolean = openvino.Type.f32, openvino.Type.boolean
        side = self.search_size
        with torch.no_grad():
            # without ``input`` convert_model leaves every size dynamic: give the fixed ones (-1: the batch axis)
            return {'backbone_template': openvino.convert_model(
                        BackboneGraph(network, self.template_size).eval(), example_input=(z_img, z_mask),
                        input=[(list(z_img.shape), f32), (list(z_mask.shape), boolean)]),
                    'backbone_search': openvino.convert_model(
                        BackboneGraph(network, side).eval(),
                        example_input=(x_img.repeat(TRACE_BATCH, 1, 1, 1), x_mask.repeat(TRACE_BATCH, 1, 1)),
                        input=[([-1, 3, side, side], f32), ([-1, side, side], boolean)]),
                    'head': openvino.convert_model(
                        head, example_input=(feat.repeat(1, TRACE_BATCH, 1), mask.repeat(TRACE_BATCH, 1),
                                             pos.repeat(1, TRACE_BATCH, 1)),
                        input=[([tokens, -1, channels], f32), ([-1, tokens], boolean), ([tokens, -1, channels], f32)])}

    def describe(self):
        return dict(super().describe(), threads=self.threads, source=self.source, batching=self.batching)

    def _request(self, key, batch):
        """``(compiled model, infer request)`` for graph ``key`` at batch ``batch``."""
        if batch == 1:
            return self.compiled[key], self.requests[key]
        if key not in self._batched:
            compiled = self._core.compile_model(self._dynamic[key], 'CPU', self._config)
            self._batched[key] = (compiled, compiled.create_infer_request())
        return self._batched[key]

    def _infer(self, key, inputs, batch):
        compiled, request = self._request(key, batch)
        result = request.infer(inputs, share_inputs=False, share_outputs=False)
        return [torch.from_numpy(np.asarray(result[i])) for i in range(len(compiled.outputs))]

    def forward_backbone(self, images, masks):
        key = self.backbone_graph(images, masks)
        feat, mask, pos = self._infer(key, [images.detach().cpu().numpy(), masks.detach().cpu().numpy()],
                                      images.shape[0])
        return {'feat': feat, 'mask': mask.to(torch.bool), 'pos': pos}

    def forward_head(self, token_dicts):
        feat, mask, pos = concat_tokens(token_dicts)
        outs = self._infer('head', [feat.numpy(), mask.numpy(), pos.numpy()], mask.shape[0])
        return {'pred_boxes': outs[0].float(), 'pred_logits': outs[1].float() if self.has_score_head else None}
