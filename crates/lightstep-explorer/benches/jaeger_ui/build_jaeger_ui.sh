#!/bin/bash
# Builds Jaeger UI from its own source, for the comparison in this directory.
#
#   bash build_jaeger_ui.sh [--tools DIR] JAEGER_UI_SOURCE
#
# JAEGER_UI_SOURCE is a git checkout of https://github.com/jaegertracing/jaeger-ui at tag
# v2.20.0. The build ends up in JAEGER_UI_SOURCE/packages/jaeger-ui/build; pass that directory
# to the other scripts as --jaeger-ui-build.
#
# Node and pnpm are installed from the npm registry under the tools directory: --tools DIR, else
# $JAEGER_UI_TOOLS, else target/jaeger-ui-tools in this repository. Nothing is written to this
# repository's source tree. The checkout itself is changed in two files (see below).
#
# Why the steps below:
# - Jaeger UI v2.20.0 is a pnpm workspace that requires Node >= 24.16 with engine-strict set, and
#   Debian ships an older Node. The npm package node-linux-<arch> carries a Node binary, so only
#   Debian's npm is needed to start.
# - v2.20.0 pins @assistant-ui/react-ag-ui 0.0.35, which the npm registry answered with 404 when
#   this script was written; the versions it does serve do not build against the
#   @assistant-ui/core that v2.20.0 pins. Jaeger UI needs that package only for its optional AI
#   assistant, so it is replaced by the small stub in stub-react-ag-ui/ (a copy of it is placed
#   in the tools directory and linked from there). This edits
#   packages/jaeger-ui/package.json and pnpm-lock.yaml in the checkout.
set -euo pipefail

usage() { echo "usage: $0 [--tools DIR] JAEGER_UI_SOURCE" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../../.." && pwd)
TOOLS=${JAEGER_UI_TOOLS:-$REPO/target/jaeger-ui-tools}
SRC=
while [ $# -gt 0 ]; do
  case "$1" in
    --tools) [ $# -ge 2 ] || usage; TOOLS=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -z "$SRC" ] || usage; SRC=$1; shift ;;
  esac
done
[ -n "$SRC" ] || usage
SRC=$(cd "$SRC" && pwd)
[ -f "$SRC/packages/jaeger-ui/package.json" ] || { echo "$SRC is not a jaeger-ui checkout" >&2; exit 1; }
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$SRC/packages/jaeger-ui/package.json")
if [ "$version" != "2.20.0" ]; then
  echo "warning: $SRC holds Jaeger UI $version; these steps were written for v2.20.0" >&2
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "no Node package for $(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)
if [ ! -x "$TOOLS/node_modules/.bin/pnpm" ] || [ ! -x "$TOOLS/node_modules/.bin/node" ]; then
  [ -f "$TOOLS/package.json" ] || echo '{"private": true}' > "$TOOLS/package.json"
  (cd "$TOOLS" && npm install --no-audit --no-fund --save-exact "node-linux-$arch@24.22.3" pnpm@10.5.0)
fi
export PATH="$TOOLS/node_modules/.bin:$PATH"

rm -rf "$TOOLS/stub-react-ag-ui"
cp -r "$HERE/stub-react-ag-ui" "$TOOLS/stub-react-ag-ui"
pkg="$SRC/packages/jaeger-ui/package.json"
sed -i "s#\"@assistant-ui/react-ag-ui\": \"[^\"]*\"#\"@assistant-ui/react-ag-ui\": \"link:$TOOLS/stub-react-ag-ui\"#" "$pkg"
grep -q "\"@assistant-ui/react-ag-ui\": \"link:$TOOLS/stub-react-ag-ui\"" "$pkg" \
  || { echo "could not point @assistant-ui/react-ag-ui at the stub in $pkg" >&2; exit 1; }

cd "$SRC"
# The lock file names 0.0.35, so it has to be updated for the stub.
pnpm install --no-frozen-lockfile
cd packages/jaeger-ui
pnpm run build
echo "built: $SRC/packages/jaeger-ui/build"
