"""One entry point to build any supported network by variant name."""
import dataclasses

from .lightning import build_stark_lightning
from .stark import VARIANTS, build_stark

#: Every variant name the loaders accept (besides 'auto').
VARIANT_NAMES = tuple(VARIANTS) + ('lightning',)


def build_network(variant, score_head=None, search_size=320, template_size=128, score_kind=None):
    """Build 's50', 'st50', 'st101', 'lite0' (:func:`build_stark`) or 'lightning' (:func:`build_stark_lightning`).

    ``score_kind`` overrides the variant's score head kind ('mlp' or 'corner_peak', :class:`.stark.VariantSpec`);
    lite0 files trained before the corner-peak head carry the MLP head.

    Raises:
        ValueError: unknown variant or sizes that do not fit the backbone stride.
    """
    if variant == 'lightning':
        if score_head:
            raise ValueError('STARK-Lightning has no score head')
        return build_stark_lightning(template_size, search_size)
    spec = None
    if score_kind is not None and variant in VARIANTS:
        spec = dataclasses.replace(VARIANTS[variant], score_kind=score_kind)
    return build_stark(variant, score_head=score_head, search_size=search_size, spec=spec)
