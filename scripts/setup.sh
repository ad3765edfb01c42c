#!/usr/bin/env bash
# Idempotent set-up for allocstudy: system packages (through apt when root), a .venv, and the
# project installed into it. Re-running it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python extras to install: site (mkdocs, charts), cluster (Dask), dev (tests, browser, linters).
# A benchmark host needs none of site and dev: ALLOCSTUDY_EXTRAS=cluster make setup
EXTRAS=${ALLOCSTUDY_EXTRAS-site,cluster,dev}
APT_PACKAGES=(libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 g++ cmake make libatomic1)
# chromium drives the browser tests and the README picture: only with the dev extra
[[ ,$EXTRAS, == *,dev,* ]] && APT_PACKAGES+=(chromium)
# More Debian packages to ensure (space-separated), e.g. for a source-built allocator's needs.
read -r -a EXTRA <<< "${ALLOCSTUDY_APT_EXTRA:-}"
APT_PACKAGES+=("${EXTRA[@]}")
VENV=.venv
STAMP="$VENV/.allocstudy-installed"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: install them with:  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# The real interpreter, never a pyenv shim (a shim would carry LD_PRELOAD into its helpers).
PY=${PYTHON:-python3}
PY_REAL=$("$PY" -c 'import sys; print(sys.executable)')
if ! "$PY_REAL" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Python >= 3.11 is needed, $PY_REAL is $("$PY_REAL" --version 2>&1)" >&2
    echo "setup: set PYTHON=/path/to/python3.11 and run make setup again" >&2
    exit 1
fi
if [[ ! -x $VENV/bin/python ]]; then
    echo "setup: creating $VENV with $PY_REAL"
    "$PY_REAL" -m venv "$VENV"
fi

want=$(cat pyproject.toml constraints.txt <(echo "$EXTRAS") | sha256sum | cut -d' ' -f1)
if [[ ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    echo "setup: installing allocstudy${EXTRAS:+[$EXTRAS]} into $VENV, versions from constraints.txt"
    log="$VENV/pip-install.log"
    # constraints.txt pins every package (the service under test included); make lock renews it
    if ! { "$VENV/bin/python" -m pip install -q --upgrade pip &&
           "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".${EXTRAS:+[$EXTRAS]}"; } >"$log" 2>&1; then
        grep -v '^WARNING: Location' "$log" | tail -n 25 >&2
        echo "setup: pip could not install the project (full log: $log)" >&2
        exit 1
    fi
    echo "$want" > "$STAMP"
fi
