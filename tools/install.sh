#!/usr/bin/env bash
# Install the verified OpenMMLab stack and this package into a virtualenv.
#
#   bash tools/install.sh                  (what `make install` runs)
#   STACK=onedl bash tools/install.sh      (`make install STACK=onedl`)
#
# Idempotent: every step checks first and skips what is already in place,
# so a second run takes seconds. Settings (environment variables):
#   STACK       full: mmdet 3.1.0, mmcv 2.0.1 and MMRotate 1.0.0rc1
#               (horizontal and oriented boxes); mmdet3.3: mmdet 3.3.0,
#               mmcv 2.1.0, no MMRotate (horizontal boxes); onedl: the
#               OneDL fork, mmdet 3.5.1, mmcv 2.3.6, MMRotate 1.2.1 (both).
#               Default: the stack the virtualenv has (so `make test` keeps
#               it), else full. Another stack's packages in the virtualenv
#               are removed first (they share import folders).
#   VENV        virtualenv to create/use                 (default .venv)
#   PYTHON      interpreter that creates the virtualenv  (default python3)
#   TORCH_SPEC  what pip installs when the venv has no torch >= 2.1
#               (default torch==2.13.0; e.g. a CUDA build for your GPU)
#   DS2D2_CACHE where the built mmcv wheels are kept, outside the clone so
#               every clone on this machine reuses them
#               (default ~/.cache/ds2d2_mmrazor)
# Why each version, and what is repaired: docs/install.md,
# ds2d2_mmrazor/env.py (STACKS, the versions) and ds2d2_mmrazor/compat.py.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac  # the mmcv build runs elsewhere
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
CACHE=${DS2D2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ds2d2_mmrazor}
# the stack asked for, else the one this virtualenv has, else the full one
STACK_FILE=$VENV/.ds2d2_mmrazor-stack
STACK=${STACK:-$(cat "$STACK_FILE" 2>/dev/null || echo full)}
# MMCV_VERSION, MMCV_DIST, PINS (the rest of the stack) and OTHERS (other
# stacks' distributions of the same import packages) from env.py
pins=$("$PYTHON" ds2d2_mmrazor/env.py pins --stack "$STACK")
eval "$pins"
read -r -a PINS <<< "$PINS"
read -r -a OTHERS <<< "$OTHERS"
EXTRAS=tests,mim
case " ${PINS[*]} " in *"mmrotate=="*) EXTRAS=$EXTRAS,rotated ;; esac

PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
T_ALL=$SECONDS
T_STEP=$SECONDS

step() {  # step "what" "how long it usually takes"
  T_STEP=$SECONDS
  printf '\n==> %s (%s)\n' "$1" "$2"
}
took() { printf '    done in %ds\n' $((SECONDS - T_STEP)); }
py_ok() { "$PY" -c "$1" >/dev/null 2>&1; }

step "virtualenv $VENV" "a few seconds"
if [ -x "$PY" ]; then
  echo "    exists: $("$PY" --version)"
else
  "$PYTHON" -m venv "$VENV"
  echo "    created with $("$PY" --version)"
fi
took

step "torch and build tools" "~20s from a local wheel, minutes for a CUDA download"
if py_ok 'import sys, torch, numpy, setuptools, wheel
v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
s = tuple(int(x) for x in setuptools.__version__.split(".")[:1])
sys.exit(not (v >= (2, 1) and s < (81,)))'; then
  echo "    present: torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  # mmcv's setup.py imports pkg_resources, which setuptools 81 removed.
  "${PIP[@]}" install -q "$TORCH_SPEC" numpy 'setuptools<81' wheel
fi
took

step "other stacks' packages" "seconds"
present=$("$PY" -c "import importlib.metadata as m
for name in '${OTHERS[*]}'.split():
    try:
        m.version(name)
        print(name)
    except m.PackageNotFoundError:
        pass")
if [ -n "$present" ]; then
  # They share import folders with this stack's: removing them deletes
  # files of this stack's packages too, so those are reinstalled as well,
  # and this package, whose requirements name the other stack's.
  own=("$MMCV_DIST" "${PINS[@]%%==*}" ds2d2_mmrazor)
  echo "    removing $(echo $present) (and reinstalling ${own[*]})"
  # shellcheck disable=SC2086
  "${PIP[@]}" uninstall -q -y $present "${own[@]}"
else
  echo "    none"
fi
took

step "$MMCV_DIST $MMCV_VERSION with compiled ops" \
  "~10 min to build on 2 cores the first time on a machine, seconds after"
if py_ok "import mmcv, mmcv.ops; from mmcv.utils import ext_loader
assert mmcv.__version__ == '$MMCV_VERSION'; ext_loader.load_ext('_ext', ['nms'])"; then
  echo "    present and its ops load"
else
  # One wheel per (torch build, python): the ops link against torch.
  key=$("$PY" -c 'import sys, torch
print(f"torch{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheels=$CACHE/$MMCV_DIST-$MMCV_VERSION-$key
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    echo "    building: no cached wheel in $wheels"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      "$MMCV_DIST==$MMCV_VERSION" -d "$src"
    tar -xzf "$src"/*.tar.gz -C "$src"
    tree=$(find "$src" -mindepth 1 -maxdepth 1 -type d)
    # e.g. torch >= 2.1 headers need C++17, mmcv 2.0.1 hard-codes c++14
    # (ds2d2_mmrazor/compat.py, SOURCE_REPAIRS; per mmcv version).
    "$PY" ds2d2_mmrazor/env.py repair --source mmcv "$tree"
    # CUDA ops are built when torch sees a GPU (or FORCE_CUDA=1 is set).
    (cd "$tree" && MMCV_WITH_OPS=1 \
      MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" wheel -q --no-deps \
      --no-build-isolation -w "$wheels.tmp" .)
    mv "$wheels.tmp" "$wheels"
  else
    echo "    using cached wheel from $wheels"
  fi
  # Replace any mmcv without working ops (e.g. mmcv-lite or a wrong build).
  "${PIP[@]}" uninstall -q -y "$MMCV_DIST" mmcv-lite 2>/dev/null || true
  "${PIP[@]}" install -q "$wheels"/*.whl "${PINS[0]}"
fi
took

step "the $STACK stack: ${PINS[*]}; pywavelets, openmim, pytest" \
  "~1 min the first time, seconds after"
# The stamp ties the editable install to this checkout and this setup.py.
stamp=$VENV/.ds2d2_mmrazor-installed
stamp_want="$PWD $(sha1sum setup.py | cut -d' ' -f1) ${PINS[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_want" ] \
   && py_ok "import importlib.metadata as m, sys
want = dict(s.split('==') for s in '${PINS[*]}'.split())
sys.exit(any(m.version(k) != v for k, v in want.items()))"; then
  echo "    present"
else
  "${PIP[@]}" install -q "${PINS[@]}"
  # This package, editable, with its declared dependencies and test tools.
  "${PIP[@]}" install -q --no-build-isolation -e ".[$EXTRAS]"
  echo "$stamp_want" > "$stamp"
fi
echo "$STACK" > "$STACK_FILE"
took

step "repairs of released upstream defects" "a second"
"$PY" ds2d2_mmrazor/env.py repair --stack "$STACK"
took

printf '\nInstalled in %ds. Check it any time with `make env`.\n' \
  $((SECONDS - T_ALL))
