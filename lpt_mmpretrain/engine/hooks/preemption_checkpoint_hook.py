"""Checkpoints that survive preemption: on a signal, save at the next
iteration boundary, stop and exit 75; optionally save every N iterations."""
import os.path as osp
import signal
import sys
from typing import List, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from ..runner.resumable_train_loop import ResumableEpochBasedTrainLoop

__all__ = ['PreemptionCheckpointHook', 'EXIT_PREEMPTED']

DATA_BATCH = Optional[Union[dict, tuple, list]]

#: Exit status after a signal-triggered checkpoint: EX_TEMPFAIL of
#: sysexits.h ("temporary failure, retry"); tools/slurm_train.sh requeues
#: the job on it.
EXIT_PREEMPTED = 75


class _IgnoreSignalsInWorker:
    """A dataloader ``worker_init_fn`` that runs the original one, then makes
    the worker ignore ``signals``: PyTorch's workers die on a SIGTERM that
    their parent did not send, and a dead worker would end the main process
    before it could save. The main process stops its workers at exit."""

    def __init__(self, init_fn, signals: Sequence[int]) -> None:
        self.init_fn = init_fn
        self.signals = list(signals)

    def __call__(self, worker_id: int) -> None:
        if self.init_fn is not None:
            self.init_fn(worker_id)
        for sig in self.signals:
            signal.signal(sig, signal.SIG_IGN)


@HOOKS.register_module()
class PreemptionCheckpointHook(Hook):
    """Save a resumable checkpoint on SIGTERM (preemption), stop and exit.

    - **Signals.** From ``before_train`` on, the ``signals`` (SIGTERM, which
      Slurm sends on preemption and ``scancel`` sends by default, and
      SIGUSR1, which ``sbatch --signal`` can send before the time limit)
      only set a flag. After the iteration in progress, every rank agrees on
      the flag (an all-reduce of one number), the checkpoint
      ``iter_{N}.pth`` is written (N = iterations done), ``last_checkpoint``
      points to it, and the loop's ``stop_training`` is set: the loop ends
      after that iteration's hooks (e.g. the prompt-only checkpoint), and
      the process exits with status ``exit_code`` at ``after_run``.
    - **Iteration checkpoints.** With ``interval > 0``, ``iter_{N}.pth`` is
      also written every ``interval`` iterations; they are kept apart from
      ``CheckpointHook``'s epoch checkpoints: this hook keeps the newest
      ``max_keep_ckpts`` of its own files (its list travels in the
      checkpoint under the message-hub key ``preemption_ckpt_ids``) and
      never touches ``CheckpointHook``'s ``keep_ckpt_ids``.

    The loop must stop between iterations: an epoch-based run needs
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', ...)`` (the
    configs' schedules), which also continues an epoch at the next batch
    after ``--resume``; ``IterBasedTrainLoop`` works as it is.

    The training dataloader's workers ignore these signals (its
    ``worker_init_fn`` is wrapped), so a signal sent to the whole process
    group, as Slurm sends it, does not kill them mid-batch.

    Args:
        interval (int): Save ``iter_{N}.pth`` every ``interval`` iterations;
            0 or less: only on a signal. Defaults to 0.
        max_keep_ckpts (int): How many of this hook's checkpoints to keep
            (the newest); 0 or less keeps all. Defaults to 1.
        signals (Sequence[str]): Names of the signals that trigger the
            checkpoint. Defaults to ('SIGTERM', 'SIGUSR1').
        exit_code (int): Exit status after a signal-triggered checkpoint.
            Defaults to 75 (``EXIT_PREEMPTED``).
        filename_tmpl (str): Checkpoint file name, formatted with the
            number of iterations done. Defaults to 'iter_{}.pth'.
        save_optimizer (bool): Save the optimizer state. Defaults to True.
        save_param_scheduler (bool): Save the scheduler states. Defaults to
            True.
        backend_args (dict, optional): File backend of the checkpoints, as
            for ``CheckpointHook``. Defaults to
            ``dict(backend='atomic_local')``: a write interrupted by a second
            signal never leaves a truncated file under the final name.
    """

    # After CheckpointHook (VERY_LOW, registered first), before
    # PromptCheckpointHook (LOWEST), which then writes the prompt-only file
    # of the checkpoint saved here.
    priority = 'VERY_LOW'

    def __init__(self,
                 interval: int = 0,
                 max_keep_ckpts: int = 1,
                 signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = EXIT_PREEMPTED,
                 filename_tmpl: str = 'iter_{}.pth',
                 save_optimizer: bool = True,
                 save_param_scheduler: bool = True,
                 backend_args: Optional[dict] = None) -> None:
        unknown = [s for s in signals if not hasattr(signal, str(s))]
        if unknown:
            raise ValueError(
                f'PreemptionCheckpointHook: unknown signal names {unknown}; '
                "use names of the `signal` module, e.g. 'SIGTERM'.")
        self.interval = int(interval)
        self.max_keep_ckpts = int(max_keep_ckpts)
        self.signals = [getattr(signal, str(s)) for s in signals]
        self.exit_code = int(exit_code)
        self.filename_tmpl = filename_tmpl
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self.backend_args = (
            dict(backend='atomic_local')
            if backend_args is None else backend_args)
        self._received: Optional[int] = None
        self._exit_pending = False
        self._previous_handlers: dict = {}

    # ----------------------------------------------------------- signals
    def _handle(self, signum, frame) -> None:
        # Only set a flag: the checkpoint is written between iterations.
        self._received = signum

    def _install_handlers(self) -> None:
        for sig in self.signals:
            self._previous_handlers[sig] = signal.signal(sig, self._handle)

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}

    def _signalled_on_any_rank(self) -> bool:
        flag = int(self._received is not None)
        if get_world_size() > 1:
            flag_t = torch.tensor([flag], dtype=torch.int32)
            all_reduce(flag_t, op='max')
            flag = int(flag_t.item())
        return bool(flag)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and not isinstance(
                loop, ResumableEpochBasedTrainLoop):
            raise ValueError(
                f'PreemptionCheckpointHook: the training loop is a '
                f'{type(loop).__name__}, which stops only between epochs '
                'and restarts an interrupted epoch from its first batch. Use '
                "train_cfg = dict(type='ResumableEpochBasedTrainLoop', "
                'max_epochs=..., val_interval=...) instead of '
                '`by_epoch=True`, or remove the hook from default_hooks.')
        self._keep: List[int] = list(
            runner.message_hub.get_info('preemption_ckpt_ids', []))
        dataloader = getattr(loop, 'dataloader', None)
        if getattr(dataloader, 'num_workers', 0) > 0 and not isinstance(
                dataloader.worker_init_fn, _IgnoreSignalsInWorker):
            # the workers start with the first epoch, after this
            dataloader.worker_init_fn = _IgnoreSignalsInWorker(
                dataloader.worker_init_fn, self.signals)
        self._install_handlers()

    # ---------------------------------------------------------- saving
    def _save(self, runner) -> str:
        step = runner.iter + 1  # iterations done
        filename = self.filename_tmpl.format(step)
        # by_epoch=False: meta holds the epoch in progress and `iter` = step
        runner.save_checkpoint(
            runner.work_dir,
            filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            by_epoch=False,
            backend_args=self.backend_args)
        path = osp.join(runner.work_dir, filename)
        runner.message_hub.update_info('last_ckpt', path)
        if is_main_process():
            with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(path)
        if step not in self._keep:
            self._keep.append(step)
        if self.max_keep_ckpts > 0:
            backend = get_file_backend(path, backend_args=self.backend_args)
            while len(self._keep) > self.max_keep_ckpts:
                old = osp.join(runner.work_dir,
                               self.filename_tmpl.format(self._keep.pop(0)))
                if is_main_process() and backend.isfile(old):
                    backend.remove(old)
        runner.message_hub.update_info('preemption_ckpt_ids', list(self._keep))
        return path

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if self._signalled_on_any_rank():
            path = self._save(runner)
            name = (
                signal.Signals(self._received).name
                if self._received is not None else 'a signal')
            runner.logger.warning(
                f'PreemptionCheckpointHook: got {name} (here or on another '
                f'rank); saved {path} after iteration {runner.iter + 1}. '
                f'Exiting with status {self.exit_code}; continue with '
                '`tools/train.py CONFIG --work-dir WORK_DIR --resume`.')
            self._exit_pending = True
            runner.train_loop.stop_training = True
        elif self.interval > 0 and self.every_n_train_iters(
                runner, self.interval):
            path = self._save(runner)
            runner.logger.info(
                f'PreemptionCheckpointHook: iteration checkpoint {path}.')

    def after_train(self, runner) -> None:
        self._restore_handlers()

    def after_run(self, runner) -> None:
        # The loop stopped after the saving iteration and every hook of the
        # run has finished: end the process with the requeue status.
        if self._exit_pending:
            sys.exit(self.exit_code)
