"""The training loop: epochs of (batch -> loss -> clipped AdamW step), checkpoints, resume, validation.

Recipe (STARK_FACTS.md sections 12 and 12b): AdamW (lr 1e-4, weight decay 1e-4; backbone lr x 0.1, trainable
backbone parameters only), ``StepLR(step_size=lr_drop_epoch, gamma=0.1)`` stepped once per epoch, gradient
clipping to max-norm 0.1 (also under AMP: the gradients are unscaled first), samples per epoch global across
processes, seed + rank per process, checkpoints from rank 0 only.

What the official trainer gets wrong and this one does not: a non-finite loss stops the run naming the step; any
exception propagates (the CLI exits non-zero); every epoch is checkpointed atomically; a resumed stage 2 keeps its
own weights (``stage2_from`` only seeds a fresh run); gradients are clipped under AMP too.
"""
import os
import random
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import StarkError
from .actor import StarkActor, TrainingForward, move_batch
from .cached_forward import CachedTrainingForward, cached_trainable_prefixes
from .checkpointing import (capture_rng_state, checkpoint_path, list_checkpoints, net_type_of, prune_checkpoints,
                            read_training_checkpoint, restore_rng_state, save_atomic)
from .config import dump_config
from .distributed import all_reduce_mean, barrier, gather_objects
from .evaluation_hook import append_scores, evaluate_checkpoint
from .network import (backbone_trainable, build_training_network, freeze_for_stage, load_stage1_weights,
                      parameter_groups, set_dropout, set_train_mode)
from .progress import CsvLog, Meter, ProgressBar
from .pretrained import load_imagenet_backbone


class TrainingError(StarkError):
    """Training cannot go on: a non-finite loss (the message names epoch, iteration and the loss terms), or a
    checkpoint that does not fit the run."""


class Trainer:
    """Trains one stage of one network.

    Args:
        config: validated config (:func:`stark_ros.training.config.load_config`).
        out_dir: run directory: ``checkpoints/``, ``log.csv``, ``config.yaml``.
        context: :class:`~stark_ros.training.distributed.DistContext`.
        train_set: torch Dataset of sampler items (:data:`stark_ros.training.actor.BATCH_KEYS`, or the cached
            features of :class:`~.pair_sampler.CachedPairSampler` when ``data.feature_cache`` is set) with
            ``set_epoch(epoch)``; its length is the global samples per epoch.
        val_set: optional Dataset of the same kind for the validation loss.
        resume: checkpoint to resume; None = the newest in ``out_dir/checkpoints`` if any, else a fresh start.
        stage2_from: stage-1 checkpoint that starts a fresh stage 2 (ignored when resuming).
        progress: show the tqdm bar (rank 0 only).
        log: callable(str) for one-line messages (rank 0 only).
    Raises:
        TrainingError, CheckpointError, ValueError: inconsistent config or checkpoints.
    """

    def __init__(self, config, out_dir, context, train_set, val_set=None, resume=None, stage2_from=None,
                 progress=True, log=print):
        self.config, self.out_dir, self.context = config, out_dir, context
        self.train_set, self.val_set = train_set, val_set
        self.stage = config['stage']
        self.progress = progress and context.is_main
        self.log = log if context.is_main else (lambda message: None)
        self.checkpoint_dir = out_dir + '/checkpoints'
        train = config['train']
        if train['deterministic']:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(train['seed'])             # identical initial weights in every process
        self.network = build_training_network(config)
        self.net_type = net_type_of(self.network)
        resume_state = self._initial_weights(resume, stage2_from)
        self.network.to(context.device)
        if train['dropout'] is not None:
            set_dropout(self.network, train['dropout'])
        cache = config['data']['feature_cache']
        if cache:      # the cached prefix of the backbone is frozen; its later blocks train
            prefixes = cached_trainable_prefixes(self.network, cache['cached_blocks'])
            model = CachedTrainingForward(self.network, cache['cached_blocks'], channels_last=train['channels_last'])
        else:
            prefixes = backbone_trainable(self.network, config)
            model = TrainingForward(self.network, channels_last=train['channels_last'])
        trainable = freeze_for_stage(self.network, self.stage, prefixes)
        self.log('stage %d: %d trainable tensors (%d parameters) of %d'
                 % (self.stage, len(trainable), sum(p.numel() for p in self.network.parameters() if p.requires_grad),
                    len(list(self.network.parameters()))))
        input_keys = model.input_keys
        if context.distributed:
            device_ids = [context.device.index] if context.device.type == 'cuda' else None
            model = DistributedDataParallel(model, device_ids=device_ids)
        self.model = model
        self.actor = StarkActor(model, self.stage, {'giou': train['giou_weight'], 'l1': train['l1_weight'],
                                                    'cls': train['cls_weight']}, input_keys=input_keys)
        self.optimizer = torch.optim.AdamW(parameter_groups(self.network, train['lr'], train['backbone_lr_multiplier']),
                                           lr=train['lr'], weight_decay=train['weight_decay'])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, train['lr_drop_epoch'], train['lr_gamma'])
        self.amp_dtype = None
        if train['amp']:
            self.amp_dtype = torch.float16 if context.device.type == 'cuda' else torch.bfloat16
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp_dtype == torch.float16)
        self.epoch = 0
        seed = train['seed'] + context.rank
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        if resume_state is not None:
            self._restore(resume_state)
        self.csv = None
        self._started = time.perf_counter()

    # ------------------------------------------------------------------------------------------- start

    def _initial_weights(self, resume, stage2_from):
        """Load the weights the run starts from; returns the checkpoint dict to resume from, or None."""
        if resume is None:
            found = list_checkpoints(self.checkpoint_dir)
            resume = found[-1][1] if found else None
        if resume is not None:
            state = read_training_checkpoint(resume)
            if state.get('stage', 1) != self.stage:
                raise TrainingError('%s is a stage-%s checkpoint but this run is stage %d (start stage 2 from a '
                                    'stage-1 file with --stage2-from and a new output directory)'
                                    % (resume, state.get('stage'), self.stage))
            self.network.load_state_dict(state['net'])
            self.log('resuming from %s (epoch %d)%s' % (resume, state['epoch'],
                                                          '; --stage2-from ignored' if stage2_from else ''))
            return state
        if self.stage == 2:
            if stage2_from is None:
                raise TrainingError('a fresh stage 2 needs a stage-1 checkpoint: --stage2-from CKPT')
            fresh = load_stage1_weights(self.network, stage2_from)
            self.log('stage 2 from %s%s' % (stage2_from, ' (score head initialised fresh)' if fresh else ''))
        elif self.config['model']['pretrained'] or self.network.variant not in ('s50', 'st50', 'st101', 'lightning'):
            self.log(load_imagenet_backbone(self.network, self.config['model']['pretrained']))
        else:
            self.log('warning: no ImageNet backbone weights (model.pretrained): the backbone starts random')
        return None

    def _restore(self, state):
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['lr_scheduler'])
        if state.get('grad_scaler') and self.scaler.is_enabled():
            self.scaler.load_state_dict(state['grad_scaler'])
        self.epoch = int(state['epoch'])
        rng_states = state.get('rng_states') or []
        if len(rng_states) == self.context.world_size:
            restore_rng_state(rng_states[self.context.rank])
        else:
            self.log('warning: checkpoint has random states of %d processes, this run has %d: seeding afresh'
                     % (len(rng_states), self.context.world_size))

    # --------------------------------------------------------------------------------------------- loop

    def run(self):
        """Train until ``train.epochs``; returns the last epoch's mean training terms (dict of floats)."""
        epochs = self.config['train']['epochs']
        if self.context.is_main:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(self.out_dir + '/config.yaml', 'w') as stream:
                stream.write(dump_config(self.config))
            self.csv = CsvLog(self.out_dir + '/log.csv', self.actor.term_names)
        stats = {}
        if self.epoch >= epochs:
            self.log('nothing to do: the checkpoint is at epoch %d of %d' % (self.epoch, epochs))
        try:
            while self.epoch < epochs:
                epoch = self.epoch + 1
                stats = self.train_epoch(epoch)
                self.scheduler.step()
                interval = self.config['train']['val_interval']
                if self.val_set is not None and interval and epoch % interval == 0:
                    self.validate(epoch)
                self.epoch = epoch
                self.save_checkpoint(stats)
        finally:
            if self.csv is not None:
                self.csv.close()
        return stats

    def _loader(self, dataset, epoch, shuffle_seed):
        if hasattr(dataset, 'set_epoch'):
            dataset.set_epoch(epoch)
        sampler = DistributedSampler(dataset, num_replicas=self.context.world_size, rank=self.context.rank,
                                     shuffle=False, drop_last=True)
        generator = torch.Generator().manual_seed(shuffle_seed)
        workers = self.config['data']['num_workers']
        # Workers start from a fork server (a fresh interpreter), never by fork() of this process: fork() runs the
        # pthread_atfork handlers of every library loaded here (OpenMP, oneTBB, DDS, ...) and copies their threads'
        # locks in whatever state they are; in a process with many such threads (a ROS node, a test session) that
        # crashed it (SIGSEGV in the parent, test suite 2026-12-06).
        return DataLoader(dataset, batch_size=self.config['train']['batch_size'], sampler=sampler, drop_last=True,
                          num_workers=workers, pin_memory=self.context.device.type == 'cuda', generator=generator,
                          multiprocessing_context='forkserver' if workers > 0 else None)

    def train_epoch(self, epoch):
        """One epoch over this process's share of the samples; returns the epoch's mean terms (all processes)."""
        loader = self._loader(self.train_set, epoch, self.config['train']['seed'] * 100003 + epoch)
        if len(loader) == 0:
            raise TrainingError('an epoch of %d samples gives no full batch of %d per process on %d process(es)'
                                % (len(self.train_set), self.config['train']['batch_size'], self.context.world_size))
        set_train_mode(self.network, self.stage)
        batch_size = self.config['train']['batch_size'] * self.context.world_size
        bar = ProgressBar(len(loader), 'epoch %d/%d' % (epoch, self.config['train']['epochs']), self.progress)
        epoch_meter, window, window_start = Meter(), Meter(), time.perf_counter()
        interval = self.config['log']['interval']
        try:
            for iteration, batch in enumerate(loader, start=1):
                terms = self.train_step(move_batch(batch, self.context.device, self.actor.batch_keys), epoch, iteration)
                epoch_meter.add(terms)
                window.add(terms)
                lr = self.optimizer.param_groups[0]['lr']
                bar.update(terms['loss'], lr, iteration * batch_size)
                if iteration % interval == 0 or iteration == len(loader):
                    elapsed = time.perf_counter() - window_start
                    self._csv_row('train', epoch, iteration, len(loader), window.means(),
                                  window.count * batch_size / max(elapsed, 1e-9))
                    window, window_start = Meter(), time.perf_counter()
        finally:
            bar.close()
        return epoch_meter.means()

    def train_step(self, batch, epoch, iteration):
        """Forward, non-finite check (all processes agree), backward, clipping (non-finite norm: error), step.

        Returns:
            dict of floats, the terms averaged over processes.
        Raises:
            TrainingError: a non-finite loss in any process, naming epoch and iteration.
        """
        with torch.autocast(self.context.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss, terms = self.actor(batch)
        names = self.actor.term_names
        local = torch.stack([terms[k].float() for k in names]
                            + [(~torch.isfinite(loss.detach())).float()]).to(self.context.device)
        reduced = all_reduce_mean(local, self.context).tolist()
        values = dict(zip(names, reduced[:-1]))
        if reduced[-1] > 0:
            raise TrainingError('non-finite loss at epoch %d, iteration %d: %s (this process, rank %d: %s)'
                                % (epoch, iteration, _format(values), self.context.rank,
                                   _format({k: float(terms[k]) for k in names})))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config['train']['grad_clip_norm']
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_([p for p in self.network.parameters() if p.requires_grad], clip)
            # float16 loss scaling skips such steps by itself; otherwise a non-finite gradient is fatal
            if not self.scaler.is_enabled() and not torch.isfinite(norm):
                raise TrainingError('non-finite gradient norm at epoch %d, iteration %d (loss %s)'
                                    % (epoch, iteration, _format(values)))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return values

    @torch.no_grad()
    def validate(self, epoch):
        """Mean loss terms over the validation samples (eval mode, no gradients), logged as a 'val' CSV row."""
        loader = self._loader(self.val_set, epoch, self.config['train']['seed'] * 100003 + epoch + 7)
        self.network.eval()
        meter = Meter()
        start = time.perf_counter()
        for batch in loader:
            _, terms = self.actor(move_batch(batch, self.context.device, self.actor.batch_keys))
            local = torch.stack([terms[k].float() for k in self.actor.term_names])
            meter.add(dict(zip(self.actor.term_names, all_reduce_mean(local, self.context).tolist())))
        rate = meter.count * self.config['train']['batch_size'] * self.context.world_size / (time.perf_counter() - start)
        self._csv_row('val', epoch, meter.count, meter.count, meter.means(), rate)
        self.log('epoch %d validation: %s' % (epoch, _format(meter.means())))
        return meter.means()

    def _csv_row(self, phase, epoch, iteration, per_epoch, means, rate):
        if self.csv is None:
            return
        groups = self.optimizer.param_groups
        row = {'phase': phase, 'epoch': epoch, 'iteration': iteration, 'step': (epoch - 1) * per_epoch + iteration,
               'samples': iteration * self.config['train']['batch_size'] * self.context.world_size,
               'lr': float(groups[0]['lr']), 'backbone_lr': float(groups[-1]['lr']) if len(groups) > 1 else '',
               'samples_per_s': float(rate), 'elapsed_s': float(time.perf_counter() - self._started)}
        row.update({k: float(v) for k, v in means.items()})
        self.csv.write(row)

    # ----------------------------------------------------------------------------------------- checkpoint

    def checkpoint_state(self, stats):
        """The checkpoint dict for the current epoch (only plain values and tensors)."""
        rng_states = gather_objects(capture_rng_state(), self.context)
        state = {'net': self.network.state_dict(), 'net_type': self.net_type, 'variant': self.network.variant,
                 'actor_type': 'StarkActor', 'epoch': self.epoch, 'stage': self.stage,
                 'optimizer': self.optimizer.state_dict(), 'lr_scheduler': self.scheduler.state_dict(),
                 'rng_states': rng_states, 'config': self.config, 'config_yaml': dump_config(self.config),
                 'stats': {k: float(v) for k, v in stats.items()}}
        if self.scaler.is_enabled():
            state['grad_scaler'] = self.scaler.state_dict()
        return state

    def save_checkpoint(self, stats):
        """Write this epoch's checkpoint (rank 0; every rank contributes its random state) and prune old ones."""
        state = self.checkpoint_state(stats)
        if self.context.is_main:
            path = checkpoint_path(self.checkpoint_dir, self.net_type, self.epoch)
            save_atomic(state, path)
            self.log('epoch %d: %s -> %s' % (self.epoch, _format(stats), path))
            interval = self.config['eval']['interval']
            if interval and self.epoch % interval == 0:       # the other processes wait at the barrier
                self.evaluate(path)
            keep = self.config['checkpoint']
            prune_checkpoints(self.checkpoint_dir, keep['keep_last'], keep['keep_every'])
        barrier(self.context)

    def evaluate(self, path):
        """Tracking evaluation of the checkpoint ``path`` (:mod:`.evaluation_hook`); returns the overall scores."""
        out = os.path.join(self.out_dir, 'eval', 'ep%04d' % self.epoch)
        device = 'cpu' if self.context.device.type == 'cpu' else str(self.context.device)
        overall, table = evaluate_checkpoint(path, self.config['eval'], out, device)
        append_scores(os.path.join(self.out_dir, 'eval.csv'), self.epoch, overall)
        self.log('epoch %d evaluation on %s:\n%s' % (self.epoch, self.config['eval']['dataset'], table.rstrip()))
        return overall


def _format(values):
    return ' '.join('%s=%.5g' % (k, v) for k, v in values.items())
