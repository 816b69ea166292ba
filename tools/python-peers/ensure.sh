#!/usr/bin/env bash
# Makes sure a Python venv with the pinned OpenTelemetry SDK and OTLP exporters exists under
# <target dir>/python-peers/venv, (re)creating it when it is missing or requirements.txt (or the
# Python version) changed, and prints the venv's python path on stdout. Everything else goes to
# stderr.
#
# Exit status:
#   0  the venv is ready; its python path is on stdout
#   3  Python or PyPI is unavailable and $CI is not set: callers may skip, loudly
#   1  anything else, including "Python or PyPI unavailable" when $CI is set: callers must fail
#
# Used by the tests of lightstep-receiver (and later lightstep-cli); safe to run concurrently.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
base="$target/python-peers"
venv="$base/venv"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"

unavailable() {
    echo "python-peers: $*" >&2
    if [[ -n "${CI:-}" ]]; then
        echo "python-peers: CI is set, so this is an error: install python3 with venv and pip, and allow access to PyPI" >&2
        exit 1
    fi
    exit 3
}

if ! command -v "$python" >/dev/null 2>&1; then
    unavailable "no '$python' on PATH"
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    unavailable "'$python' lacks the venv or ensurepip module (Debian: apt-get install python3-venv)"
fi

mkdir -p "$base"
# One creator at a time: concurrent test binaries may all call this script.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$base/.lock"
    flock 9
fi

want="$( { cat "$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
stamp="$venv/.requirements.sha256"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

echo "python-peers: creating $venv (first run, or requirements changed)" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        --timeout 30 --retries 2 -r "$requirements" >&2; then
    rm -rf "$venv"
    unavailable "pip could not install $requirements (no access to PyPI?)"
fi
echo "$want" >"$stamp"
echo "$venv/bin/python"
