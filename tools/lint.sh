#!/usr/bin/env bash
# Every style hook of .pre-commit-config.yaml on the whole tree (flake8,
# isort, yapf, codespell), with the tools of VENV (default .venv, set up by
# tools/install.sh). Non-zero exit, and the diff, on any style error.
#   bash tools/lint.sh            # check (and fix, for isort / yapf) all files
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/pre-commit" ]; then
    echo "tools/lint.sh: $VENV/bin/pre-commit missing: run" \
        "'bash tools/install.sh' (it installs the dev extra)." >&2
    exit 2
fi
# the hooks are `language: system`: they run the tools found on PATH
PATH="$(cd "$VENV/bin" && pwd):$PATH" "$VENV/bin/pre-commit" run --all-files \
    --show-diff-on-failure "$@"
