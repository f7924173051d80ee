#!/usr/bin/env bash
# Create ./.venv with everything lpt_mmpretrain needs (CPU or GPU).
#   bash tools/install.sh                 # torch 2.14.1 + mmcv-lite
#   MMCV=full bash tools/install.sh       # full mmcv (compiled ops, GPU)
# PYTHON picks the interpreter (default python3), VENV the folder (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet torch==2.14.1 torchvision==0.29.1
if [ "${MMCV:-lite}" = "full" ]; then
    # Compiled mmcv for CUDA; see README ("Full mmcv on GPU machines").
    $PIP install --quiet openmim
    "$VENV/bin/mim" install 'mmcv>=2.0.0,<2.4.0'
fi
$PIP install --quiet -e '.[tests]'
"$VENV/bin/python" -c "import lpt_mmpretrain, mmpretrain, mmengine, torch; \
print('lpt_mmpretrain', lpt_mmpretrain.__version__, '| mmpretrain', \
mmpretrain.__version__, '| mmengine', mmengine.__version__, '| torch', \
torch.__version__)"
