#!/usr/bin/env bash
# Set up ./.venv with everything lpt_mmpretrain needs (CPU or GPU), once.
#   bash tools/install.sh                 # torch 2.14.1 + mmcv-lite
#   MMCV=full bash tools/install.sh       # full mmcv (compiled ops, GPU)
# PYTHON picks the interpreter (default python3), VENV the folder (.venv).
# Idempotent: when VENV was set up by this very script and setup.py (a
# stamp of their sha256 and MMCV), it returns at once; otherwise it
# (re)installs. Installs the package editable with the `tests` and `deploy`
# extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MMCV=${MMCV:-lite}
STAMP="$VENV/.lpt_install_stamp"
want=$(cat setup.py tools/install.sh | sha256sum | cut -d' ' -f1)-$MMCV

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0  # set up already
fi
echo "tools/install.sh: setting up $VENV (a few minutes, once)" >&2
"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet torch==2.14.1 torchvision==0.29.1
if [ "$MMCV" = "full" ]; then
    # Compiled mmcv for CUDA; see README ("Full mmcv on GPU machines").
    $PIP install --quiet openmim
    "$VENV/bin/mim" install 'mmcv>=2.0.0,<2.4.0'
fi
$PIP install --quiet -e '.[tests,deploy]'
"$VENV/bin/python" -W ignore -c "import lpt_mmpretrain, mmpretrain, mmengine, torch; \
print('lpt_mmpretrain', lpt_mmpretrain.__version__, '| mmpretrain', \
mmpretrain.__version__, '| mmengine', mmengine.__version__, '| torch', \
torch.__version__)"
echo "$want" > "$STAMP"
