#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the pinned requirements.
# Usage: bash scripts/setup_env.sh   (idempotent: a second run installs nothing new)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 is pinned in requirements.txt: that spec takes the local CPU wheel instead of gigabytes of CUDA packages.
.venv/bin/python -m pip install --quiet -r requirements.txt
# MONAI Label (docs/monai_label.md): its declared dependencies pin numpy<2 and build sam2 against a CUDA torch, so it is
# installed alone; the modules its bundle tasks import come from requirements.txt.
.venv/bin/python -m pip install --quiet --no-deps monailabel==0.8.5
