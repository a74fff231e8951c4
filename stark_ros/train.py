"""``python -m stark_ros.train`` (console script ``stark_train``): train STARK, one stage per run.

Examples::

    python -m stark_ros.train st50_stage1 --out runs/st50_s1 --set data.root=/data model.pretrained=resnet50.pth
    python -m stark_ros.train st50_stage2 --out runs/st50_s2 --stage2-from runs/st50_s1/checkpoints/STARKST_ep0500.pth.tar
    torchrun --nproc-per-node 8 -m stark_ros.train st50_stage1 --out runs/st50_s1 --device cuda

A run directory holds ``checkpoints/`` (one file per epoch, the last N and every K-th kept), ``log.csv`` and
``config.yaml``; running the same command again resumes from its newest checkpoint. Any failure exits with status 1
after printing the error (the file or the step it concerns); success exits 0.
"""
import argparse
import os
import sys
import traceback

from .training.config import load_config, recipe_names


def build_parser():
    parser = argparse.ArgumentParser(prog='stark_train', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='packaged recipe name (see --list-configs) or a YAML file')
    parser.add_argument('--out', help='run directory (default: runs/<config name>)')
    parser.add_argument('--set', nargs='+', action='extend', default=[], metavar='KEY=VALUE', dest='overrides',
                        help='override config values, e.g. train.lr=2e-4 data.samples_per_epoch=1000 (may be repeated)')
    parser.add_argument('--pretrained', help='ImageNet backbone weights (same as --set model.pretrained=FILE)')
    parser.add_argument('--stage2-from', metavar='CKPT', help='stage-1 checkpoint a fresh stage 2 starts from')
    parser.add_argument('--resume', metavar='CKPT', help='checkpoint to resume (default: newest in --out)')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda' (torchrun: cuda:LOCAL_RANK)")
    parser.add_argument('--threads', type=int, help='torch CPU threads of each training process (default: torch\'s)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar (the CSV log is kept)')
    parser.add_argument('--list-configs', action='store_true', help='print the packaged recipes and exit')
    return parser


def run(args):
    """Train as ``args`` say; returns the last epoch's mean terms. Raises on any failure."""
    from .training.data_setup import build_datasets
    from .training.distributed import init_distributed, shutdown_distributed
    from .training.trainer import Trainer

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = list(args.overrides) + (['model.pretrained=%s' % args.pretrained] if args.pretrained else [])
    config = load_config(args.config, overrides)
    out_dir = args.out or os.path.join('runs', os.path.splitext(os.path.basename(args.config))[0])
    context = init_distributed(args.device, config['dist']['backend'], config['dist']['timeout_s'])
    os.makedirs(out_dir, exist_ok=True)
    train_set, val_set = build_datasets(config)
    trainer = Trainer(config, out_dir, context, train_set, val_set, resume=args.resume,
                      stage2_from=args.stage2_from, progress=not args.no_progress)
    stats = trainer.run()
    shutdown_distributed()
    return stats


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list_configs:
        print('\n'.join(recipe_names()))
        return 0
    if not args.config:
        build_parser().error('a config is required (see --list-configs)')
    rank = os.environ.get('RANK')
    name = 'stark_train' + (' (rank %s)' % rank if rank is not None else '')
    try:
        run(args)
    except KeyboardInterrupt:
        print('%s: interrupted' % name, file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - every failure must end the run with a non-zero status
        traceback.print_exc()
        # A DataLoader worker's error carries the worker's traceback in its message: its last line is the error.
        lines = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        print('%s: error: %s' % (name, lines[-1]), file=sys.stderr)
        return 1
    print('%s: training finished' % name, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
