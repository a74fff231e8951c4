"""Export a STARK network to ONNX: the template backbone, the search backbone and transformer + heads.

Usage::

    python -m stark_ros.backends.export_onnx --checkpoint STARKST_ep0050.pth.tar --variant auto --output-dir onnx/
    python -m stark_ros.backends.export_onnx --output-dir onnx/          # the shipped STARK-lite0 model
    python -m stark_ros.backends.export_onnx --checkpoint synthetic --variant lightning --output-dir onnx/  # tests
    python -m stark_ros.backends.export_onnx --output-dir onnx/ --fixed-batch   # every graph at batch 1

Writes to ``--output-dir`` (B = the batch: the search regions of B targets, :mod:`stark_ros.tracker.multi_tracker`;
any B >= 1, or 1 with ``--fixed-batch``):

* ``backbone_template.onnx``: ``image`` (1, 3, 128, 128) float32 normalised RGB, ``mask`` (1, 128, 128) bool
  (True = padding) -> ``feat`` (64, 1, C), ``mask_tokens`` (1, 64) bool, ``pos`` (64, 1, C); always batch 1 (a
  template is computed once per target, at its initialisation and template updates);
* ``backbone_search.onnx``: the same at 320 x 320 -> 400 tokens, batch B: ``image`` (B, 3, 320, 320), ``mask``
  (B, 320, 320) -> ``feat`` (400, B, C), ``mask_tokens`` (B, 400), ``pos`` (400, B, C);
* ``head.onnx``: ``feat`` (L, B, C), ``mask`` (B, L) bool, ``pos`` (L, B, C), the token sequence
  ``[template_1; ...; template_n; search]`` (n = 2 for ST50/ST101/lite0, 1 for S50/Lightning; L = n * 64 + 400) ->
  ``pred_boxes`` (cx, cy, w, h) normalised by the search size (shape (B, 1, 4), Lightning (B, 4)) and, for ST
  models, ``pred_logits`` (B, 1, 1) (score = sigmoid(logit)); row b of every output depends on row b of the inputs
  only;
* ``stark_onnx.json``: the sidecar (variant, sizes, token counts, every input/output name, shape and dtype with
  ``'batch'`` for the dynamic axis, ``dynamic_batch``, opset, exporter, torch version).
  :class:`stark_ros.backends.onnxruntime_backend.OnnxRuntimeEngine` reads it.

C is 256 for S50/ST50/ST101 and 128 for Lightning and lite0. Only the batch axis is dynamic (the axis named in
:data:`BATCH_AXES`); every other size is fixed (what TensorRT builds best). Export directories written before
sidecar format 2 hold batch-1 graphs everywhere: the ``onnxruntime`` engine reads the batch axis from the graphs
themselves, so it tracks several targets one after the other on them instead of feeding them a batch.
Lightning is exported in its fused (deployed) RepVGG form unless ``--unfused``. The tracker logic (crop,
normalisation, map-back, clip, template update) is not in the graphs: it stays in
:class:`stark_ros.tracker.StarkTracker`.

Numerical contract: on the oracle frame-1 inputs the ONNX graphs run by onnxruntime match the torch network to
about 1e-5 (backbone features) and 1e-5 (normalised boxes, logits); ``test/test_backends.py`` checks it, and the
``onnxruntime`` backend reproduces the oracle runs with the core tolerances (boxes 1e-2 px, scores 1e-4). A batch
of B search regions gives each row what batch 1 gives it, to float32 rounding (``test/test_multi_tracker.py``:
boxes within 1e-4 search-region px).

TensorRT (NVIDIA Jetson)
------------------------
Copy the output directory to the Jetson (JetPack ships ``trtexec`` in ``/usr/src/tensorrt/bin``) and build one
engine per graph, in fp16. The search backbone and the head have a dynamic batch axis, so their engines need an
optimisation profile: the smallest, the most frequent and the largest batch (here 1, 1, 8 targets; L and C of the
head are in ``stark_onnx.json``: L = 528, C = 128 for lite0)::

    trtexec --onnx=backbone_template.onnx --fp16 --saveEngine=backbone_template.engine
    trtexec --onnx=backbone_search.onnx --fp16 --saveEngine=backbone_search.engine \
        --minShapes=image:1x3x320x320,mask:1x320x320 --optShapes=image:1x3x320x320,mask:1x320x320 \
        --maxShapes=image:8x3x320x320,mask:8x320x320
    trtexec --onnx=head.onnx --fp16 --saveEngine=head.engine \
        --minShapes=feat:528x1x128,mask:1x528,pos:528x1x128 --optShapes=feat:528x1x128,mask:1x528,pos:528x1x128 \
        --maxShapes=feat:528x8x128,mask:8x528,pos:528x8x128

(or export with ``--fixed-batch`` and build all three without shape options, as for a single target). The
engines take the same inputs and give the same outputs as the ONNX graphs (names in ``stark_onnx.json``);
the boolean masks are bool tensors. Engines are specific to the device and TensorRT version they were built
with. Check fp16 boxes against fp32 (``trtexec ... --loadInputs``, or run the ONNX files through onnxruntime) on
your own sequences before deploying: fp16 is not validated against the oracles here (no GPU in CI), nor are these
trtexec commands. stark_ros itself does not run TensorRT engines yet; this is the path for users who want to.
"""
import argparse
import io
import json
import os
import sys
import warnings

import torch

from .common import BackboneGraph, HeadGraph, example_tokens, search_size, token_count

SIDECAR = 'stark_onnx.json'
FILES = {'backbone_template': 'backbone_template.onnx', 'backbone_search': 'backbone_search.onnx',
         'head': 'head.onnx'}
DEFAULT_OPSET = 17
#: Sidecar format: 2 since the search backbone and the head have a dynamic batch axis (format 1: batch 1 only).
FORMAT_VERSION = 2
#: The graphs with a dynamic batch axis (several targets' search regions in one call), and the axis of every input
#: and output that is the batch; the template backbone keeps batch 1.
BATCH_AXES = {'backbone_search': {'image': 0, 'mask': 0, 'feat': 1, 'mask_tokens': 0, 'pos': 1},
              'head': {'feat': 1, 'mask': 0, 'pos': 1, 'pred_boxes': 0, 'pred_logits': 0}}
#: the name of the dynamic axis in the graphs and in the sidecar's shapes
BATCH = 'batch'
#: batch of the examples the dynamic graphs are traced on: not 1, so no exporter can mistake the batch axis for a
#: constant of size 1 (torch.export specialises sizes 0 and 1)
TRACE_BATCH = 2


def _export_one(module, args, input_names, output_names, opset, exporter, batch_axes=None):
    """Export ``module`` traced on ``args``; returns the ONNX model as bytes.

    ``batch_axes`` ({input or output name: axis}) makes those axes dynamic (named :data:`BATCH`).
    """
    dynamic_axes = None
    if batch_axes:
        dynamic_axes = {name: {axis: BATCH} for name, axis in batch_axes.items()
                        if name in input_names or name in output_names}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if exporter == 'torchscript':
            buffer = io.BytesIO()
            torch.onnx.export(module, args, buffer, input_names=list(input_names), output_names=list(output_names),
                              opset_version=opset, do_constant_folding=True, dynamo=False,
                              dynamic_axes=dynamic_axes)
            return buffer.getvalue()
        program = torch.onnx.export(module, args, input_names=list(input_names),
                                    output_names=list(output_names), opset_version=max(opset, 18), dynamo=True,
                                    dynamic_axes=dynamic_axes)
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'model.onnx')
            program.save(path, external_data=False)
            with open(path, 'rb') as f:
                return f.read()


def _describe(names, tensors, batch_axes=None):
    """``[{name, shape, dtype}]``; with ``batch_axes`` the batch axis of the shape is the string :data:`BATCH`."""
    out = []
    for name, tensor in zip(names, tensors):
        shape = list(tensor.shape)
        if batch_axes and name in batch_axes:
            shape[batch_axes[name]] = BATCH
        out.append({'name': name, 'shape': shape, 'dtype': str(tensor.dtype).replace('torch.', '')})
    return out


def _batched(tensors, batch_axes, names):
    """The batch-1 example tensors at batch :data:`TRACE_BATCH` (2): each stacked with itself along its batch axis,
    the second image mirrored so the rows differ."""
    return tuple(torch.cat([t, t.flip(-1) if name == 'image' else t], dim=batch_axes[name])
                 for name, t in zip(names, tensors))


def export_graphs(network, template_size=128, opset=DEFAULT_OPSET, exporter='torchscript', dynamic_batch=True):
    """Export the three graphs of a CPU network in memory.

    Args:
        network: a loaded network (eval mode, on the CPU).
        template_size: template patch side, pixels.
        opset: ONNX opset (17 by default: TensorRT 8.5+ and onnxruntime read it).
        exporter: 'torchscript' (``torch.onnx.export(dynamo=False)``, single self-contained files) or 'dynamo'.
        dynamic_batch: True (default): the search backbone and the head take any batch B >= 1 (axes in
            :data:`BATCH_AXES`; traced at batch :data:`TRACE_BATCH`); False: every graph has batch 1.
    Returns:
        ``(models, sidecar)``: ``models`` maps 'backbone_template' / 'backbone_search' / 'head' to ONNX bytes;
        ``sidecar`` is the JSON-able description.
    Raises:
        ValueError: unknown exporter, or a network in training mode.

    The network is not modified (the wrappers are in eval mode, so the exporter's train/eval switching leaves
    the batch-norm statistics alone).
    """
    if exporter not in ('torchscript', 'dynamo'):
        raise ValueError("exporter must be 'torchscript' or 'dynamo', got %r" % (exporter,))
    if network.training:
        raise ValueError('export needs the network in eval mode (call network.eval())')
    z_img, z_mask, x_img, x_mask, feat, mask, pos = example_tokens(network, template_size)
    head = HeadGraph(network, token_count(template_size)).eval()
    models, described = {}, {}
    with torch.no_grad():
        for key, args, graph in (('backbone_template', (z_img, z_mask), BackboneGraph(network, template_size)),
                                 ('backbone_search', (x_img, x_mask), BackboneGraph(network, search_size(network))),
                                 ('head', (feat, mask, pos), head)):
            axes = BATCH_AXES.get(key) if dynamic_batch else None
            if axes:
                args = _batched(args, axes, graph.input_names)
            outputs = graph(*args)
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            models[key] = _export_one(graph, args, graph.input_names, graph.output_names, opset, exporter, axes)
            described[key] = {'file': FILES[key], 'inputs': _describe(graph.input_names, args, axes),
                              'outputs': _describe(graph.output_names, outputs, axes)}
    sidecar = {
        'format': 'stark_ros-onnx', 'format_version': FORMAT_VERSION,
        'variant': network.variant, 'num_templates': network.num_templates,
        'has_score_head': network.has_score_head, 'template_size': template_size,
        'search_size': search_size(network), 'template_tokens': token_count(template_size),
        'search_tokens': network.feat_sz ** 2, 'hidden_dim': int(feat.shape[-1]),
        'dynamic_batch': bool(dynamic_batch),
        'batch': ('backbone_search and head: any batch B >= 1 (axis %r in the shapes; row b of the outputs from row '
                  'b of the inputs); backbone_template: 1' % BATCH) if dynamic_batch else 'every graph: batch 1',
        'head_token_order': 'template_1..template_n then search',
        'pred_boxes': 'cx, cy, w, h normalised by search_size (before map-back)',
        'pred_logits': 'raw confidence logit; score = sigmoid(logit)' if network.has_score_head else None,
        'image_normalisation': 'RGB / 255, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)',
        'opset': opset if exporter == 'torchscript' else max(opset, 18), 'exporter': exporter,
        'torch_version': torch.__version__, 'models': described,
    }
    return models, sidecar


def export_onnx(network, output_dir, template_size=128, opset=DEFAULT_OPSET, exporter='torchscript',
                dynamic_batch=True):
    """Write the three ONNX files and ``stark_onnx.json`` into ``output_dir`` (created if needed); arguments as
    :func:`export_graphs`.

    Returns:
        the sidecar dict.
    """
    models, sidecar = export_graphs(network, template_size, opset, exporter, dynamic_batch)
    os.makedirs(output_dir, exist_ok=True)
    for key, data in models.items():
        with open(os.path.join(output_dir, FILES[key]), 'wb') as f:
            f.write(data)
    with open(os.path.join(output_dir, SIDECAR), 'w', encoding='utf-8') as f:
        json.dump(sidecar, f, indent=2)
        f.write('\n')
    return sidecar


def read_sidecar(model_dir):
    """The sidecar of an export directory. Raises ValueError if it is missing or not ours."""
    path = os.path.join(model_dir, SIDECAR)
    try:
        with open(path, encoding='utf-8') as f:
            sidecar = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError('cannot read %s: %s' % (path, error)) from error
    if sidecar.get('format') != 'stark_ros-onnx':
        raise ValueError('%s is not a stark_ros ONNX sidecar' % path)
    return sidecar


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m stark_ros.backends.export_onnx',
                                     description='Export STARK to ONNX (backbone_template/backbone_search/head + '
                                                 'stark_onnx.json). See the module docstring for TensorRT.')
    parser.add_argument('--checkpoint', default=None,
                        help="official, MMTracking or stark_ros.train checkpoint (default: the shipped lite0 "
                             "model; 'synthetic': seed-0 test weights)")
    parser.add_argument('--variant', default='auto', help="auto, s50, st50, st101, lightning or lite0 (default: auto)")
    parser.add_argument('--output-dir', required=True)
    parser.add_argument('--template-size', type=int, default=128)
    parser.add_argument('--search-size', type=int, default=320)
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--exporter', choices=('torchscript', 'dynamo'), default='torchscript')
    parser.add_argument('--unfused', action='store_true', help='Lightning: keep the training-time RepVGG branches')
    parser.add_argument('--fixed-batch', action='store_true',
                        help='batch 1 in every graph (default: the search backbone and the head take any batch, '
                             'several targets in one call)')
    parser.add_argument('--check', action='store_true',
                        help='run the exported graphs with onnxruntime and compare them with torch')
    args = parser.parse_args(argv)
    from ..errors import StarkError
    from ..model import load_network
    try:
        network, info = load_network(args.checkpoint, args.variant, 'cpu', args.search_size, 0, args.template_size,
                                     fuse=not args.unfused)
        sidecar = export_onnx(network, args.output_dir, args.template_size, args.opset, args.exporter,
                              dynamic_batch=not args.fixed_batch)
    except (StarkError, ValueError, OSError) as error:
        print('error: %s' % error, file=sys.stderr)
        return 2
    print('exported STARK-%s (%s weights) to %s: %s' % (sidecar['variant'].upper(), info['format'],
                                                        args.output_dir, ', '.join(sorted(FILES.values()))))
    if args.check:
        deviation = check_export(network, args.output_dir)
        print('onnxruntime vs torch, largest absolute difference: %s'
              % ', '.join('%s %.2e' % kv for kv in deviation.items()))
    return 0


def check_export(network, model_dir, inputs=None):
    """Largest absolute difference between onnxruntime on the exported files and torch, per output.

    Args:
        network: the exported network.
        model_dir: export directory.
        inputs: optional (template image, template mask, search image, search mask) tensors; default: the
            tracing example (noise with a padded border).
    Returns:
        dict output name -> float.
    """
    import numpy as np
    import onnxruntime
    from .common import concat_tokens
    sidecar = read_sidecar(model_dir)
    if inputs is None:
        inputs = example_tokens(network, sidecar['template_size'])[:4]
    z_img, z_mask, x_img, x_mask = inputs
    sessions = {key: onnxruntime.InferenceSession(os.path.join(model_dir, FILES[key]),
                                                  providers=['CPUExecutionProvider']) for key in FILES}
    result = {}
    with torch.no_grad():
        z = network.forward_backbone(z_img, z_mask)
        x = network.forward_backbone(x_img, x_mask)
        feat, mask, pos = concat_tokens([z] * network.num_templates + [x])
        ref = network.forward_head([z] * network.num_templates + [x])
    for key, (img, msk), tokens in (('backbone_template', (z_img, z_mask), z),
                                    ('backbone_search', (x_img, x_mask), x)):
        outs = sessions[key].run(None, {'image': img.numpy(), 'mask': msk.numpy()})
        for name, out, ref_key in zip(('feat', 'mask_tokens', 'pos'), outs, ('feat', 'mask', 'pos')):
            diff = out.astype(np.float64) - tokens[ref_key].numpy().astype(np.float64)
            result['%s.%s' % (key, name)] = float(np.abs(diff).max())
    outs = sessions['head'].run(None, {'feat': feat.numpy(), 'mask': mask.numpy(), 'pos': pos.numpy()})
    result['head.pred_boxes'] = float(np.abs(outs[0] - ref['pred_boxes'].numpy()).max())
    if network.has_score_head:
        result['head.pred_logits'] = float(np.abs(outs[1] - ref['pred_logits'].numpy()).max())
    return result


if __name__ == '__main__':
    sys.exit(main())
