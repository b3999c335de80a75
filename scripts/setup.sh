#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): the Alphabet's Debian fonts and the
# project, installed editable from this checkout, with the exact versions of constraints.txt
# (pyproject.toml states ranges; the constraints reproduce the tested environment).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_fonts.sh
python -m pip install --quiet -c constraints.txt -e ".[test]" --config-settings editable_mode=strict
