"""Training of STARK (``python -m stark_ros.train``): two-stage recipe, distributed with torchrun.

Data flows one way: dataset -> sampler -> processing -> network -> loss. Data side: :mod:`.data` (config entries ->
datasets and ratios), :mod:`.sampler`, :mod:`.processing`, :mod:`.augmentation`. Loop side: :mod:`.config` (YAML
recipes in ``configs/``), :mod:`.losses`, :mod:`.actor` (one step's forward), :mod:`.network` (freezing, parameter
groups, stage-2 start), :mod:`.pretrained` (ImageNet backbones), :mod:`.trainer` (the loop), :mod:`.checkpointing`,
:mod:`.distributed`, :mod:`.progress` (bar and CSV log). The project's own training data (photos and videos from the
registries, pseudo-labelled) is built by :mod:`.own_data` (``python -m stark_ros.training.own_data``).
"""
