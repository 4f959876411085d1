#!/usr/bin/env bash
# The GPU check (docs/gpu.md): DS2D2 on a CUDA machine, in one command.
#
#   make gpu-wheels                    # here, with network: fills .whl/
#   bash tools/gpu_check.sh            # there (make gpu-check): CUDA
#   bash tools/gpu_check.sh --device cpu --out DIR   # the dry run (CI)
#
# With a wheel folder (--wheels DIR; with --device cuda, .whl/ when it
# exists, made by `make gpu-wheels`), it sets the stack up on a machine that
# has only python3 with a torch, and no network:
#   1. installs the wheels into a target folder put on PYTHONPATH (the
#      machine's own torch, numpy, scipy, OpenCV stay);
#   2. builds mmcv with its ops from the carried sdist (CUDA ops for this
#      GPU's architecture only), with this project's source repair, and
#      prints how long that took (skipped if the target folder has it);
#   3. applies this project's repairs to the installed packages;
# then runs tools/gpu_check.py (its docstring lists the checks), which
# writes OUT/gpu_check.json and exits non-zero if any check failed.
# Without a wheel folder the Python that has the stack runs the checks
# (PYTHON; default .venv/bin/python, else python3): nothing is installed.
#
# Options: --device cuda|cpu (default cuda), --out DIR (default $OUT if set,
# else work_dirs/gpu_check), --wheels DIR, --site DIR (the target folder,
# default /tmp/ds2d2_site); anything after -- goes to
# tools/gpu_check.py (e.g. -- --skip benchmark). --build-only stops after
# the set-up: a second run with the same --site then finds mmcv built (for a
# machine whose command time cannot hold both).
# `bash tools/gpu_check.sh --fetch-wheels` is `make gpu-wheels` (into .whl/
# or --wheels DIR; PYVER=3.11 fetches for another Python).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

DEVICE=cuda
OUT_DIR=${OUT:-work_dirs/gpu_check}
WHEELS=
SITE=/tmp/ds2d2_site
FETCH=0
BUILD_ONLY=0
EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --site) SITE=$2; shift 2 ;;
    --fetch-wheels) FETCH=1; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "gpu_check.sh: unknown option $1 (see the header of $0)" >&2
       exit 2 ;;
  esac
done
case $DEVICE in cuda|cpu) ;; *)
  echo "gpu_check.sh: --device cuda or cpu, not $DEVICE" >&2; exit 2 ;;
esac
mkdir -p "$OUT_DIR"

# The stack's requirements that a CUDA machine image without network
# typically has (Python 3.12, its package list of 2026-11-17), with
# opencv-python-headless for opencv-python; tests/test_tools/
# test_gpu_check.py checks that these and CARRIED cover what the installed
# stack requires.
ON_DEVICE=(torch numpy scipy matplotlib opencv-python pillow pyyaml rich six
           joblib sympy packaging tqdm)
# What it lacks, carried as wheels at the versions `make install` put in
# the virtualenv. setuptools < 81 keeps pkg_resources, which mmcv's
# setup.py imports.
CARRIED=(mmengine mmdet mmrotate mmrazor PyWavelets addict yapf platformdirs
         termcolor pycocotools shapely terminaltables ordered-set e2cnn
         setuptools)
MMCV_VERSION=2.0.1

if [ -z "$WHEELS" ] && { [ "$FETCH" = 1 ] || { [ "$DEVICE" = cuda ] && [ -d .whl ]; }; }; then
  WHEELS=.whl
fi

if [ "$BUILD_ONLY" = 1 ] && [ -z "$WHEELS" ]; then
  echo "gpu_check.sh: --build-only sets up from a wheel folder: none given" \
       "and no .whl/ (make gpu-wheels)" >&2
  exit 2
fi

if [ "$FETCH" = 1 ]; then
  PY=${PYTHON:-.venv/bin/python}
  PYVER=${PYVER:-3.12}
  # CARRIED and MMCV_VERSION are the full stack's (docs/install.md)
  stack=$("$PY" -c 'import sys; sys.path.insert(0, "ds2d2_mmrazor")
import env; print(env.installed_stack())')
  if [ "$stack" != full ]; then
    echo "gpu_check.sh: --fetch-wheels carries the full stack (mmcv" \
         "$MMCV_VERSION, mmdet 3.1.0, mmrotate 1.0.0rc1), but $PY has the" \
         "$stack stack: give PYTHON a full-stack virtualenv's python" \
         "(make install STACK=full VENV=.venv-full)" >&2
    exit 2
  fi
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  pins=$("$PY" - "${CARRIED[@]}" <<'EOF'
import importlib.metadata as m, sys
print(' '.join(f'{name}=={m.version(name)}' for name in sys.argv[1:]))
EOF
)
  echo "==> wheels for CPython $PYVER, manylinux x86-64: $pins"
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$WHEELS" $pins
  echo "==> the mmcv $MMCV_VERSION sdist (built there, for its GPU)"
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$WHEELS" "mmcv==$MMCV_VERSION"
  du -sh "$WHEELS"
  exit 0
fi

BUILD_S=
if [ -n "$WHEELS" ]; then
  [ -d "$WHEELS" ] || { echo "gpu_check.sh: no wheel folder $WHEELS" \
    "(make gpu-wheels makes .whl/)" >&2; exit 1; }
  PY=${PYTHON:-python3}
  if [ "$DEVICE" = cuda ]; then
    "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' || {
      echo "gpu_check.sh: $PY's torch sees no CUDA device" >&2; exit 1; }
  fi
  "$PY" - "${ON_DEVICE[@]}" <<'PYEOF' || exit 1
import importlib.metadata as m, sys
def has(name):
    try:
        return bool(m.version(name))
    except m.PackageNotFoundError:
        return False
missing = [n for n in sys.argv[1:] if not (has(n) or has(n + '-headless'))]
if missing:
    sys.exit(f'gpu_check.sh: this Python lacks {missing}, which the stack '
             'needs: add them to CARRIED in tools/gpu_check.sh')
PYEOF
  echo "==> installing $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH=$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}

  if "$PY" -c "import mmcv, mmcv.ops; from mmcv.utils import ext_loader
assert mmcv.__version__ == '$MMCV_VERSION'; ext_loader.load_ext('_ext', ['nms'])" \
      2>/dev/null; then
    echo "==> mmcv $MMCV_VERSION with ops: present in $SITE"
  else
    jobs=$(nproc)
    command -v ninja >/dev/null || "$PY" -c 'import ninja' 2>/dev/null || \
      echo "    warning: no ninja: mmcv compiles one file at a time" >&2
    cuda=()
    if [ "$DEVICE" = cuda ]; then
      arch=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
      cuda=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$arch")
    fi
    echo "==> building mmcv $MMCV_VERSION ops (${cuda[*]:-CPU only}) with" \
         "$jobs jobs (log: $OUT_DIR/mmcv_build.log)"
    src=$(mktemp -d)
    tar -xzf "$WHEELS/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
    "$PY" ds2d2_mmrazor/env.py repair --source mmcv "$src/mmcv-$MMCV_VERSION"
    start=$SECONDS
    if ! (cd "$src/mmcv-$MMCV_VERSION" && env MMCV_WITH_OPS=1 "${cuda[@]}" \
          MAX_JOBS=$jobs "$PY" -m pip wheel --no-deps --no-build-isolation --no-index \
          -w "$src/dist" . ) > "$OUT_DIR/mmcv_build.log" 2>&1; then
      echo "gpu_check.sh: the mmcv build failed after $((SECONDS - start)) s;" \
           "its last lines:" >&2
      grep -m 20 -E 'error|FAILED' "$OUT_DIR/mmcv_build.log" >&2 || true
      tail -n 30 "$OUT_DIR/mmcv_build.log" >&2
      exit 1
    fi
    BUILD_S=$((SECONDS - start))
    echo "    built in ${BUILD_S} s"
    "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --upgrade \
      --target "$SITE" "$src"/dist/mmcv-*.whl
    rm -rf "$src"
  fi
  echo "==> repairs of released upstream defects"
  "$PY" ds2d2_mmrazor/env.py repair --stack full
  if [ "$BUILD_ONLY" = 1 ]; then
    echo "==> set up in $SITE; run the checks with the same --site"
    exit 0
  fi
else
  PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi

echo "==> tools/gpu_check.py --device $DEVICE"
exec "$PY" tools/gpu_check.py --device "$DEVICE" --out "$OUT_DIR" \
  ${BUILD_S:+--build-seconds "$BUILD_S"} "${EXTRA[@]}"
