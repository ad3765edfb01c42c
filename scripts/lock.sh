#!/usr/bin/env bash
# Refresh constraints.txt: the exact version of every Python package a study installs.
#
#     make lock
#
# Installs allocstudy with every extra into a throwaway venv, unconstrained (the newest
# releases pyproject.toml's ranges allow), and freezes what was installed. Review the diff:
# fastapi, uvicorn, starlette and pydantic are part of what a study measures, so a change
# there changes the service under test; commit it with a note, and say so beside results.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
PY_REAL=$("$PY" -c 'import sys; print(sys.executable)')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY_REAL" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q '.[site,cluster,dev]'
{
    echo "# Exact versions for make setup (pip install -c constraints.txt). Made by: make lock"
    echo "# on $(date -u +%Y-%m-%d) with $("$tmp/venv/bin/python" --version). Do not edit by hand."
    "$tmp/venv/bin/python" -m pip freeze --exclude allocstudy
} > constraints.txt
echo "lock: constraints.txt: $(grep -cv '^#' constraints.txt) packages"
