#!/usr/bin/env bash
# Set up ./.venv with everything lpt_mmpretrain needs (CPU or GPU), once.
#   bash tools/install.sh                 # torch 2.14.1 + mmcv-lite
#   MMCV=full bash tools/install.sh       # full mmcv (compiled ops, GPU)
#   STACK=onedl bash tools/install.sh     # OneDL's maintained fork instead:
#       onedl-mmpretrain 1.3.6, onedl-mmengine 0.10.12, onedl-mmcv 2.3.6
# PYTHON picks the interpreter (default python3), VENV the folder (.venv).
# Idempotent: when VENV was set up by this very script and setup.py (a
# stamp of their sha256, MMCV and STACK), it returns at once; otherwise it
# (re)installs. Installs the package editable with the `tests`, `deploy`,
# `serve` (the multi-task server) and `dev` (style tools) extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MMCV=${MMCV:-lite}
STACK=${STACK:-upstream}
STAMP="$VENV/.lpt_install_stamp"
case "$STACK" in
    upstream | onedl) ;;
    *) echo "tools/install.sh: STACK=$STACK: expected 'upstream' (the" \
        "default) or 'onedl'" >&2; exit 2 ;;
esac
if [ "$STACK" = onedl ] && [ "$MMCV" = full ]; then
    echo "tools/install.sh: MMCV=full is for the upstream stack; with" \
        "STACK=onedl, onedl-mmcv is installed without compiled ops (LPT" \
        "needs none). Drop MMCV=full." >&2
    exit 2
fi
want=$(cat setup.py tools/install.sh | sha256sum | cut -d' ' -f1)-$MMCV-$STACK

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0  # set up already
fi
echo "tools/install.sh: setting up $VENV ($STACK stack; a few minutes, once)" >&2
"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet torch==2.14.1 torchvision==0.29.1
# The two stacks install the same modules under other distribution names:
# take the other stack's out first (a venv switched from one to the other).
if [ "$STACK" = onedl ]; then
    $PIP uninstall --quiet --yes mmpretrain mmengine mmcv-lite mmcv 2>/dev/null || true
    # onedl-mmcv comes as source only; built in pip's isolated environment
    # (no torch there) it is pure Python, like mmcv-lite: no compiler needed.
    $PIP install --quiet onedl-mmengine==0.10.12 onedl-mmcv==2.3.6 \
        onedl-mmpretrain==1.3.6
else
    $PIP uninstall --quiet --yes onedl-mmpretrain onedl-mmengine onedl-mmcv 2>/dev/null || true
    if [ "$MMCV" = "full" ]; then
        # Compiled mmcv for CUDA; see README ("Full mmcv on GPU machines").
        $PIP install --quiet openmim
        "$VENV/bin/mim" install 'mmcv>=2.0.0,<2.4.0'
    fi
fi
# setup.py asks for the stack it finds installed (see its
# openmmlab_requirements); on a fresh venv that is upstream's.
$PIP install --quiet -e '.[tests,deploy,serve,dev]'
"$VENV/bin/python" -W ignore -c "import lpt_mmpretrain, mmpretrain, mmengine, torch; \
print('lpt_mmpretrain', lpt_mmpretrain.__version__, '| mmpretrain', \
mmpretrain.__version__, '| mmengine', mmengine.__version__, '| torch', \
torch.__version__)"
echo "$want" > "$STAMP"
