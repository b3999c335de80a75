#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): the Alphabet's Debian fonts and the
# project with its pinned dependencies, installed editable from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_fonts.sh
python -m pip install --quiet -e ".[test]"
