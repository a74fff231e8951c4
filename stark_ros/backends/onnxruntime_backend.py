"""``onnxruntime`` backend: the exported ONNX graphs (:mod:`.export_onnx`) run by ONNX Runtime on the CPU.

Mostly a check that the exported files track like the torch network (the files are what TensorRT users deploy),
and a portable CPU runtime. By default the engine exports the network in memory (nothing is written); with
``model_dir`` it loads an export directory instead (its ``stark_onnx.json`` must match the network's variant and
sizes).

Several targets: the search backbone and the head are exported with a dynamic batch axis
(:data:`.export_onnx.BATCH_AXES`), so :class:`stark_ros.tracker.multi_tracker.MultiTracker` runs every target's
search region in one call of each. Whether a graph takes a batch is read from the graph's own input shapes, not
from the sidecar: an export directory written before the batch axis was dynamic (batch-1 graphs) gives an engine
with ``batching`` False, and the multi-target tracker runs its targets one after the other on it. The batch-1 path
is the same graph at B = 1 (measured on the shipped lite0 model, 2 threads: 18.2 ms backbone + 7.7 ms head against
19.0 + 7.6 ms for the batch-1 graphs of before, interleaved; boxes equal to 6e-8 of the normalised output).

Numerical contract: fp32 only. The oracle free and forced runs hold with the core tolerances (boxes 1e-2 px,
scores 1e-4), like the torch reference. A batch gives each target the boxes of its batch-1 run within 1e-4
search-region px (``test/test_multi_tracker.py``).
"""
import os

import numpy as np
import torch

from .common import Engine, concat_tokens, default_threads, resolve_precision
from .export_onnx import BATCH_AXES, FILES, export_graphs, read_sidecar


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


def has_dynamic_axis(session):
    """True when some input of the ONNX Runtime ``session`` has a symbolic (dynamic) size, i.e. a batch axis."""
    return any(not isinstance(size, int) for arg in session.get_inputs() for size in arg.shape)


class OnnxRuntimeEngine(Engine):
    """Three ONNX Runtime sessions (template backbone, search backbone, head) behind the engine interface.

    Args:
        network: the loaded network (exported unless ``model_dir`` is given; never modified).
        device: must be the CPU.
        precision: None/'fp32'/'auto' (fp32).
        template_size: template patch side, pixels.
        threads: intra-op threads (default: the cores available to this process).
        model_dir: an export directory to load instead of exporting.

    Attributes:
        batching: whether the search backbone and the head graphs take a batch of B >= 1 search regions (read from
            the graphs: False for batch-1 exports).
    """

    backend = 'onnxruntime'

    def __init__(self, network, device=None, precision=None, template_size=128, threads=None, model_dir=None):
        import onnxruntime
        device = torch.device(device if device is not None else 'cpu')
        if device.type != 'cpu':
            raise ValueError('the onnxruntime backend runs on the CPU only (got device %s)' % device)
        precision = resolve_precision(precision, device, supported=('fp32',))
        super().__init__(network, device, precision, template_size)
        self.fixed_template_size = self.template_size     # fixed-shape graphs
        self.threads = int(threads or default_threads())
        if model_dir is None:
            cpu_network = network if next(network.parameters()).device.type == 'cpu' else None
            if cpu_network is None:
                raise ValueError('export needs the network on the CPU')
            models, self.sidecar = export_graphs(cpu_network, template_size)
        else:
            self.sidecar = read_sidecar(model_dir)
            expected = {'variant': self.variant, 'template_size': self.template_size,
                        'search_size': self.search_size, 'num_templates': self.num_templates,
                        'has_score_head': self.has_score_head}
            wrong = {k: (self.sidecar.get(k), v) for k, v in expected.items() if self.sidecar.get(k) != v}
            if wrong:
                raise ValueError('ONNX export in %s does not match the network: %s'
                                 % (model_dir, ', '.join('%s %r (network %r)' % (k, a, b)
                                                         for k, (a, b) in wrong.items())))
            models = {key: os.path.join(model_dir, name) for key, name in FILES.items()}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: a tracker waits for camera frames, and spinning threads would steal the
        # cores from everything else in the process (measured: eager torch 20 -> 35 ms/frame beside a spinning ORT).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.add_session_config_entry('session.inter_op.allow_spinning', '0')
        self.sessions = {key: onnxruntime.InferenceSession(model, options, providers=['CPUExecutionProvider'])
                         for key, model in models.items()}
        self._output_names = {key: [o.name for o in s.get_outputs()] for key, s in self.sessions.items()}
        self.batching = all(has_dynamic_axis(self.sessions[key]) for key in BATCH_AXES)

    def describe(self):
        return dict(super().describe(), threads=self.threads, batching=self.batching)

    def _run(self, key, feeds):
        return self.sessions[key].run(self._output_names[key], feeds)

    def forward_backbone(self, images, masks):
        feat, mask, pos = self._run(self.backbone_graph(images, masks),
                                    {'image': np.ascontiguousarray(_numpy(images), dtype=np.float32),
                                     'mask': np.ascontiguousarray(_numpy(masks), dtype=np.bool_)})
        return {'feat': torch.from_numpy(feat), 'mask': torch.from_numpy(mask), 'pos': torch.from_numpy(pos)}

    def forward_head(self, token_dicts):
        feat, mask, pos = concat_tokens(token_dicts)
        outs = self._run('head', {'feat': _numpy(feat), 'mask': _numpy(mask), 'pos': _numpy(pos)})
        return {'pred_boxes': torch.from_numpy(outs[0]),
                'pred_logits': torch.from_numpy(outs[1]) if self.has_score_head else None}
