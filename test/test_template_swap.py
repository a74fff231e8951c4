"""The shipped model uses its template: on the validation split of ../shared/train_real, success AUC with the right
template minus AUC with a template from another sequence (same init box) is at least 0.15 (issue 14, README)."""
import os

from dataset_layouts import shared_train_real
from stark_ros.datasets.detect import open_dataset
from stark_ros.datasets.subset import read_split
from stark_ros.evaluation.template_swap import template_swap
from stark_ros.training.config import CONFIG_DIR
from stark_ros.tracker import StarkTracker


def test_shipped_model_needs_the_right_template():
    validation = read_split(os.path.join(CONFIG_DIR, 'train_real_val.txt'), open_dataset(shared_train_real()))
    sequences = list(validation)
    assert len(sequences) == 8
    tracker = StarkTracker.from_checkpoint()
    result = template_swap(tracker, sequences)
    print(result)
    assert result['right'] - result['swapped'] >= 0.15, result
