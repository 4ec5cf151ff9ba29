#!/usr/bin/env bash
# Prints the path of a `schemathesis` CLI on stdout, installing a pinned version into a venv in a
# cache outside the repository when needed (reused by every later run, CI included). Progress
# goes to stderr so callers can capture the path. Extra arguments run it instead:
#   scripts/schemathesis.sh run --help
#
# Pinned: schemathesis changes its checks and CLI between minor versions (4.x is not 3.x), and a
# fuzz run that is green today must stay green for the same server tomorrow.
set -euo pipefail

version="4.32.5"
cache_root="${ASYNCQUEUE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncqueue}"
venv="$cache_root/schemathesis-$version"
say() { printf 'schemathesis: %s\n' "$*" >&2; }

# Python 3.12 or later where there is one: under 3.11, Hypothesis's ast.parse of its own source
# deep in a schema walk can fail with "SystemError: AST constructor recursion depth mismatch"
# (a CPython 3.11 bug), which Schemathesis reports as a runtime error of its coverage phase.
pick_python() {
  local candidate
  for candidate in "${SCHEMATHESIS_PYTHON:-}" python3.13 python3.12; do
    [[ -n "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 &&
      { command -v "$candidate"; return; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.13*/bin/python3 "$(pyenv root)"/versions/3.12*/bin/python3; do
      [[ -x "$candidate" ]] && { echo "$candidate"; return; }
    done
  fi
  command -v python3 || true
}

bin="$venv/bin/schemathesis"
# The marker is written last: an install cut short is redone, not half-reused.
if [[ ! -f "$venv/.installed" ]]; then
  python=$(pick_python)
  [[ -n "$python" ]] || { say "python3 (3.12 or later, best) is needed to install schemathesis $version"; exit 1; }
  say "installing schemathesis $version into $venv with $("$python" --version 2>&1) (once)"
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
  "$bin" --version >&2
  touch "$venv/.installed"
fi

if [[ $# -gt 0 ]]; then exec "$bin" "$@"; fi
echo "$bin"
