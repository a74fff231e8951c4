"""``openvino`` backend: the network compiled by the OpenVINO CPU runtime (PyPI ``openvino``), fp32 or bf16.

The network is converted as three fixed-shape models: the backbone at the template size (128), the backbone at
the search size (320), and transformer + heads over the fixed token sequence ``[templates; search]``. By default
the conversion goes through the same in-memory ONNX export as :mod:`.export_onnx` (fast, and the graph users
deploy); ``source='torch'`` uses ``openvino.convert_model`` on the torch modules instead. Compiled with
``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS`` = the cores available, and ``INFERENCE_PRECISION_HINT``
'f32' (set explicitly: on AMX machines OpenVINO's own default would be bf16) or 'bf16'. Tensors in and out are
torch tensors on the CPU, so the tracker does not change.

Numerical contract: 'fp32' reproduces the oracle free and forced runs with the core tolerances (boxes 1e-2 px,
scores 1e-4). 'bf16' (needs a CPU with native bf16: avx512_bf16 or AMX; OpenVINO reports 'BF16' in
``OPTIMIZATION_CAPABILITIES``) is bounded against the fp32 run on the oracle forced runs in
``test/test_backends.py`` with the same bounds as torch-fast bf16 (max 2 px, p95 1.3 px, mean 0.6 px, scores 0.02).
Measured: ST50 max 1.30 px (p95 1.03, mean 0.38, scores 0.005), Lightning max 1.35 px (p95 0.85, mean 0.26).
"""
import numpy as np
import torch

from .common import BackboneGraph, Engine, HeadGraph, concat_tokens, default_threads, example_tokens, \
    resolve_precision, token_count

_OV_PRECISION = {'fp32': 'f32', 'bf16': 'bf16'}


def openvino_supports_bf16(core=None):
    """True if OpenVINO's CPU plugin can run bf16 natively on this machine."""
    import openvino
    core = core or openvino.Core()
    try:
        return 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    except RuntimeError:
        return False


class OpenVINOEngine(Engine):
    """Three compiled OpenVINO models behind the engine interface.

    Args:
        network: the loaded network, on the CPU (not modified).
        device: must be the CPU.
        precision: None/'fp32', 'bf16' or 'auto' (bf16 where native).
        template_size: template patch side, pixels.
        threads: ``INFERENCE_NUM_THREADS`` (default: the cores available to this process).
        cache_dir: OpenVINO model cache directory (``CACHE_DIR``), to skip recompilation across runs.
        source: 'onnx' (default) or 'torch' (``openvino.convert_model`` on the torch modules).
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
        self.compiled = {key: core.compile_model(model, 'CPU', config) for key, model in models.items()}
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
        with torch.no_grad():
            return {'backbone_template': openvino.convert_model(BackboneGraph(network, self.template_size).eval(),
                                                                example_input=(z_img, z_mask)),
                    'backbone_search': openvino.convert_model(BackboneGraph(network, self.search_size).eval(),
                                                              example_input=(x_img, x_mask)),
                    'head': openvino.convert_model(head, example_input=(feat, mask, pos))}

    def describe(self):
        return dict(super().describe(), threads=self.threads, source=self.source)

    def _infer(self, key, inputs):
        result = self.requests[key].infer(inputs, share_inputs=False, share_outputs=False)
        return [torch.from_numpy(np.asarray(result[i])) for i in range(len(self.compiled[key].outputs))]

    def forward_backbone(self, images, masks):
        feat, mask, pos = self._infer(self.backbone_graph(images),
                                      [images.detach().cpu().numpy(), masks.detach().cpu().numpy()])
        return {'feat': feat, 'mask': mask.to(torch.bool), 'pos': pos}

    def forward_head(self, token_dicts):
        feat, mask, pos = concat_tokens(token_dicts)
        outs = self._infer('head', [feat.numpy(), mask.numpy(), pos.numpy()])
        return {'pred_boxes': outs[0].float(), 'pred_logits': outs[1].float() if self.has_score_head else None}
