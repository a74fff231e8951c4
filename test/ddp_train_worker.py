"""One torchrun worker of the distributed training tests (not a test module).

``python -m torch.distributed.run --standalone --nproc-per-node 2 test/ddp_train_worker.py OUT DATA MODE``:
trains STARK-Lightning on the GOT-10k folder DATA with gloo, appending after every step a digest of all its
parameters to ``OUT/rank<r>.txt``. MODE ``fail``: rank 1 raises at its second step (the other rank is then
waiting in a collective).
"""
import hashlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stark_ros.training.config import load_config  # noqa: E402
from stark_ros.training.data_setup import build_datasets  # noqa: E402
from stark_ros.training.distributed import init_distributed, shutdown_distributed  # noqa: E402
from stark_ros.training.trainer import Trainer  # noqa: E402
from training_helpers import fast_overrides  # noqa: E402


class RecordingTrainer(Trainer):
    """The real trainer, plus a digest of the parameters after every step (and an injected failure in mode 'fail')."""

    mode = 'equal'

    def train_step(self, batch, epoch, iteration):
        if self.mode == 'fail' and self.context.rank == 1 and iteration == 2:
            raise RuntimeError('rank 1 fails at epoch %d, iteration %d' % (epoch, iteration))
        values = super().train_step(batch, epoch, iteration)
        digest = hashlib.sha256()
        # parameters only: the head's batch-norm statistics are per process until DDP broadcasts rank 0's
        # at the next forward (they are not trained by the optimizer)
        for name, value in self.network.named_parameters():
            digest.update(name.encode() + value.detach().cpu().numpy().tobytes())
        with open(os.path.join(self.out_dir, 'rank%d.txt' % self.context.rank), 'a') as stream:
            stream.write('%d %d %s\n' % (epoch, iteration, digest.hexdigest()))
        return values


def main(out_dir, data_root, mode):
    torch.set_num_threads(1)
    context = init_distributed('cpu', 'gloo', timeout_s=300)
    config = load_config('lightning', fast_overrides(data_root, samples=12, batch=2, epochs=2))
    train_set, _ = build_datasets(config)
    RecordingTrainer.mode = mode
    RecordingTrainer(config, out_dir, context, train_set, progress=False).run()
    shutdown_distributed()


if __name__ == '__main__':
    main(*sys.argv[1:4])
