#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU.
#
#   bash tools/slurm_train.sh [--requeue] PARTITION JOB_NAME CONFIG WORK_DIR \
#       [tools/train.py arguments]
#
# Without --requeue: srun runs the training in the foreground.
#
# With --requeue: the job is submitted with sbatch and survives preemption
# and the time limit (docs/data_loading.md, "Preemption"):
#   - every start runs tools/train.py with --resume, so a requeued job
#     continues from WORK_DIR/last_checkpoint (a fresh WORK_DIR starts at 0);
#   - Slurm signals the batch shell SIGNAL_BEFORE seconds before the time
#     limit; the shell forwards SIGTERM to the tasks, PreemptionCheckpointHook
#     (configs/_base_/default_runtime.py) saves iter_N.pth after the
#     iteration in progress and exits with status 75, and the shell then
#     requeues the job (`scontrol requeue`);
#   - on preemption (PreemptMode=REQUEUE) Slurm sends SIGTERM itself and
#     requeues the job; the same checkpoint is written within GraceTime.
#   Stop such a job for good with `scancel JOB_ID`: the tasks then save and
#   exit 75, and the shell does not requeue (the SIGTERM came from scancel,
#   not from the time-limit signal).
#
# Environment variables: GPUS (8, the number of tasks), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5; see docs/data_loading.md for the workers each data set
# needs), SRUN_ARGS (extra srun arguments), PYTHON (python).
# With --requeue also: TIME (sbatch --time, e.g. 24:00:00; the partition's
# default if unset), SIGNAL_BEFORE (180 s), SBATCH_ARGS (extra sbatch
# arguments).
# On a partition without GPUs set GRES="" (default gpu:$GPUS_PER_NODE): the
# tasks then run on CPU with the gloo backend.

set -x

REQUEUE=0
if [ "$1" = "--requeue" ]; then
    REQUEUE=1
    shift
fi

if [ $# -lt 4 ]; then
    echo "Usage: $0 [--requeue] PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py arguments]" >&2
    exit 1
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
GRES=${GRES-"gpu:${GPUS_PER_NODE}"}
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"

if [ "$REQUEUE" = "0" ]; then
    PYTHONPATH="$TOOLS/..":$PYTHONPATH \
    srun -p ${PARTITION} \
        --job-name=${JOB_NAME} \
        ${GRES:+--gres=${GRES}} \
        --ntasks=${GPUS} \
        --ntasks-per-node=${GPUS_PER_NODE} \
        --cpus-per-task=${CPUS_PER_TASK} \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS} \
        "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
        --launcher="slurm" "${@:5}"
    exit $?
fi

SIGNAL_BEFORE=${SIGNAL_BEFORE:-180}
SBATCH_ARGS=${SBATCH_ARGS:-""}
mkdir -p "$WORK_DIR"
# The batch script; its arguments are the tools/train.py arguments.
BATCH="$WORK_DIR/slurm_requeue.sh"
cat > "$BATCH" <<SCRIPT
#!/usr/bin/env bash
# Written by tools/slurm_train.sh --requeue; runs on every (re)start.
TIME_LIMIT_NEAR=0
forward() {
    # the time limit is near: the tasks save and exit 75, then we requeue
    TIME_LIMIT_NEAR=1
    scancel --signal=TERM "\$SLURM_JOB_ID"
}
trap forward USR1
echo "start \$(date) (restart count \${SLURM_RESTART_COUNT:-0})"
PYTHONPATH="$TOOLS/..":\$PYTHONPATH \\
srun --kill-on-bad-exit=1 ${SRUN_ARGS} \\
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" \\
    --launcher=slurm --resume "\$@" &
SRUN_PID=\$!
# \`wait\` returns early (128 + the signal) when the trap runs: wait until
# srun has ended, then once more for its status, which bash keeps (srun may
# end while the trap runs)
while kill -0 \$SRUN_PID 2>/dev/null; do
    wait \$SRUN_PID
done
wait \$SRUN_PID
STATUS=\$?
echo "training exited with status \$STATUS at \$(date)"
if [ "\$STATUS" = "75" ] && [ "\$TIME_LIMIT_NEAR" = "1" ]; then
    echo "checkpoint saved before the time limit: requeueing"
    scontrol requeue "\$SLURM_JOB_ID"
fi
exit \$STATUS
SCRIPT

sbatch -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    ${GRES:+--gres=${GRES}} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    ${TIME:+--time=${TIME}} \
    --requeue \
    --open-mode=append \
    --output="$WORK_DIR/slurm-%j.out" \
    --signal=B:USR1@${SIGNAL_BEFORE} \
    ${SBATCH_ARGS} \
    "$BATCH" "${@:5}"
