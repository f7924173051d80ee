"""tools/slurm_train.sh --requeue with stand-in Slurm commands: the batch
script resumes, forwards the time-limit signal as SIGTERM to the tasks and
requeues only when they saved (status 75) because of that signal."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess runs

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'slurm_train.sh'

FAKES = {
    # sbatch: record the options, remember the batch script and its args
    'sbatch':
    'echo "$@" > "$LOG/sbatch"\n',
    # srun: drop its options, run the command, remember the task's pid
    'srun': ('while [ "${1#--}" != "$1" ]; do shift; done\n'
             'echo $$ > "$LOG/srun.pid"\n'
             '"$@" & echo $! > "$LOG/task.pid"; wait $!\n'),
    # scancel: signal the task; return only once srun has ended (or is a
    # zombie), so that the batch script's trap returns after srun is gone,
    # the order that lost the tasks' status 75 before
    'scancel':
    ('echo "$@" >> "$LOG/scancel"; kill -TERM $(cat "$LOG/task.pid")\n'
     'srun=$(cat "$LOG/srun.pid")\n'
     'for _ in $(seq 100); do\n'
     '    grep -qs "^State:[[:space:]]*[^Z]" /proc/$srun/status || break\n'
     '    sleep 0.05\n'
     'done\n'),
    'scontrol':
    'echo "$@" >> "$LOG/scontrol"\n',
    # the "python" of the task: record the arguments, wait for SIGTERM,
    # then exit 75 as PreemptionCheckpointHook does (0 if FINISH is set)
    'fakepython': ('echo "$@" > "$LOG/train_args"\n'
                   '[ -n "$FINISH" ] && exit 0\n'
                   "trap 'exit 75' TERM\n"
                   'while true; do sleep 0.1; done\n'),
}


def _setup(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text('#!/usr/bin/env bash\n' + body)
        (bin_dir / name).chmod(0o755)
    env = dict(
        os.environ,
        PATH=f'{bin_dir}:{os.environ["PATH"]}',
        LOG=str(tmp_path),
        PYTHON=str(bin_dir / 'fakepython'),
        SLURM_JOB_ID='4242')
    work = tmp_path / 'work'
    subprocess.run([
        'bash',
        str(SCRIPT), '--requeue', 'part', 'job', 'c.py',
        str(work), '--amp'
    ],
                   env=env,
                   check=True,
                   capture_output=True,
                   timeout=60)
    sbatch = (tmp_path / 'sbatch').read_text()
    assert '--requeue' in sbatch and '--signal=B:USR1@180' in sbatch
    return env, work / 'slurm_requeue.sh'


def _wait_for(path, timeout=30):
    end = time.time() + timeout
    while not path.exists():
        assert time.time() < end, f'{path} never appeared'
        time.sleep(0.1)


def test_time_limit_signal_saves_and_requeues(tmp_path):
    env, batch = _setup(tmp_path)
    job = subprocess.Popen(['bash', str(batch), '--amp'],
                           env=env,
                           stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT,
                           text=True)
    _wait_for(tmp_path / 'task.pid')
    _wait_for(tmp_path / 'train_args')
    args = (tmp_path / 'train_args').read_text()
    assert '--resume' in args and '--launcher=slurm' in args
    assert '--amp' in args
    job.send_signal(signal.SIGUSR1)  # what sbatch --signal=B:USR1 sends
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 75, out
    assert (tmp_path /
            'scancel').read_text().split() == ['--signal=TERM', '4242']
    assert (tmp_path / 'scontrol').read_text().split() == ['requeue', '4242']


def test_finished_training_is_not_requeued(tmp_path):
    env, batch = _setup(tmp_path)
    proc = subprocess.run(['bash', str(batch)],
                          env=dict(env, FINISH='1'),
                          capture_output=True,
                          text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert not (tmp_path / 'scontrol').exists()
