#!/usr/bin/env bash
# The GPU check in one command: benchmarks/gpu_check.py says what it measures and writes.
#
#   bash benchmarks/gpu_check.sh --out DIR --data penn.npz     # on a GPU machine: about 8 minutes
#   bash benchmarks/gpu_check.sh --out DIR --dry-run           # anywhere: CPU, TRITON_INTERPRET=1, tiny sizes
#
# Where posedenoise is not installed (a lent GPU machine: no network, its own torch and triton), this tree is
# installed first, offline, with the build tools already there (setuptools, pybind11, a C++ compiler; the C++
# extension is optional and its build status is logged):
#   python3 -m pip install --no-build-isolation --no-deps --no-index -e .
# Should that fail (an old setuptools without the wheel package cannot build an editable install offline), it
# runs from the source tree instead: setup.py build_ext --inplace, a link posedenoise/kernels -> ../kernels
# (what the install's package_dir maps), and PYTHONPATH. The install's time counts against gpu_check.py's
# --budget (GPU_CHECK_T0). PYTHON=... chooses the interpreter.
set -uo pipefail
export GPU_CHECK_T0="${GPU_CHECK_T0:-$(date +%s)}"
export PYTHONUNBUFFERED=1              # progress lines reach a log or a pipe as they happen
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-$(command -v python3 || command -v python)}"
out=""
prev=""
for arg in "$@"; do                       # --out DIR, for the install's log should the install fail
    if [ "$prev" = "--out" ]; then out="$arg"; fi
    case "$arg" in --out=*) out="${arg#--out=}" ;; esac
    prev="$arg"
done
install_log="$(mktemp "${TMPDIR:-/tmp}/gpu_check_install.XXXXXX")"
if "$PY" -c "import posedenoise.kernels, posedenoise.ops" >/dev/null 2>&1; then
    where="$("$PY" -c 'import os, posedenoise; print(os.path.dirname(posedenoise.__file__))')"
    echo "posedenoise is installed here ($where): not reinstalled" >"$install_log"
else
    echo "gpu_check: installing posedenoise from $(pwd), offline:" \
         "$PY -m pip install --no-build-isolation --no-deps --no-index -e ." >&2
    start=$(date +%s)
    if PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$PY" -m pip install --no-build-isolation --no-deps --no-index \
            -e . >"$install_log" 2>&1; then
        echo "[offline install: $(( $(date +%s) - start )) s]" >>"$install_log"
    else
        echo "gpu_check: the editable install failed; running from the source tree instead" >&2
        {
            echo "[pip install -e failed; from the source tree: setup.py build_ext --inplace," \
                 "posedenoise/kernels -> ../kernels, PYTHONPATH]"
            "$PY" setup.py build_ext --inplace
            [ -e posedenoise/kernels ] || ln -s ../kernels posedenoise/kernels
        } >>"$install_log" 2>&1
        export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
        if ! "$PY" -c "import posedenoise.kernels, posedenoise.ops" >>"$install_log" 2>&1; then
            echo "gpu_check: error: posedenoise cannot be installed or run from this tree; the end of the log:" >&2
            tail -n 30 "$install_log" >&2
            if [ -n "$out" ] && mkdir -p "$out" 2>/dev/null; then cp "$install_log" "$out/gpu_check.log"; fi
            rm -f "$install_log"
            exit 1
        fi
        echo "[from the source tree: $(( $(date +%s) - start )) s]" >>"$install_log"
    fi
fi
"$PY" benchmarks/gpu_check.py --install-log "$install_log" "$@"
rc=$?
rm -f "$install_log"
exit $rc
