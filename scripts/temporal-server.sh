#!/usr/bin/env bash
# Prints `name=path` lines for the Temporal server binaries `npm run cluster` runs, building the
# missing ones into a cache outside the repository (like scripts/temporal-cli.sh does for the
# CLI). Progress goes to stderr so callers can capture the paths.
#
#   scripts/temporal-server.sh        server=…, sql=… (its SQL schema tool) and schema=… (the
#                                     PostgreSQL schema folder, from the server's module source)
#   scripts/temporal-server.sh ui     ui=… (the Temporal Web UI server)
#
# $TEMPORAL_SERVER, $TEMPORAL_SQL_TOOL, $TEMPORAL_SCHEMA_DIR and $TEMPORAL_UI_SERVER point at your
# own instead. Each build is a `go install` of a tagged release through the Go module proxy (the
# server and the SQL tool: about 3.5 minutes on 2 cores, once; the UI: about a minute).
set -euo pipefail

server_version="v1.29.1"
# The release the Temporal CLI v1.5.1 embeds (scripts/temporal-cli.sh), so its modules are often
# cached already; it serves the same UI as `temporal server start-dev`.
ui_version="v2.42.1"
cache_root="${ASYNCQUEUE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncqueue}"
server_dir="$cache_root/temporal-server-$server_version"
ui_dir="$cache_root/temporal-ui-server-$ui_version"
say() { printf 'temporal-server: %s\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    say "no Go toolchain: install Go (https://go.dev/dl, or apt-get install golang), or build by hand:"
    say "  GOBIN=$1 go install $2"
    exit 1
  fi
}

# go install with a timer, so the log says what a first build costs.
build() {
  local dir="$1"; shift
  mkdir -p "$dir"
  local started=$SECONDS
  if ! GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$@" >&2; then
    say "go install $* failed"
    return 1
  fi
  say "built $* into $dir in $((SECONDS - started)) s"
}

server_pkgs=("go.temporal.io/server/cmd/server@$server_version" "go.temporal.io/server/cmd/tools/sql@$server_version")

ensure_server() {
  if [[ -n "${TEMPORAL_SERVER:-}" && -n "${TEMPORAL_SQL_TOOL:-}" ]]; then return; fi
  if [[ -x "$server_dir/server" && -x "$server_dir/sql" ]]; then return; fi
  need_go "$server_dir" "${server_pkgs[*]}"
  say "building the Temporal server $server_version and its SQL tool into $server_dir (about 3.5 minutes, once)"
  build "$server_dir" "${server_pkgs[@]}"
}

print_server() {
  ensure_server
  local bin="${TEMPORAL_SERVER:-$server_dir/server}"
  [[ -x "$bin" ]] || { say "TEMPORAL_SERVER=$bin is not an executable file"; exit 1; }
  echo "server=$bin"
}

# The PostgreSQL schemas ship with the module source the build left in Go's module cache.
print_schema() {
  if [[ -n "${TEMPORAL_SCHEMA_DIR:-}" ]]; then echo "schema=$TEMPORAL_SCHEMA_DIR"; return; fi
  local modcache dir
  modcache="$(go env GOMODCACHE 2>/dev/null || true)"
  dir="$modcache/go.temporal.io/server@$server_version"
  if [[ -z "$modcache" || ! -d "$dir/schema/postgresql/v12" ]]; then
    need_go "$server_dir" "${server_pkgs[*]}"
    say "downloading the Temporal server's module source for its schemas"
    dir="$(cd "${TMPDIR:-/tmp}" && go mod download -json "go.temporal.io/server@$server_version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  fi
  [[ -d "$dir/schema/postgresql/v12" ]] || { say "no PostgreSQL schemas under $dir; set TEMPORAL_SCHEMA_DIR"; exit 1; }
  echo "schema=$dir/schema/postgresql/v12"
}

print_sql() {
  ensure_server
  local bin="${TEMPORAL_SQL_TOOL:-$server_dir/sql}"
  [[ -x "$bin" ]] || { say "TEMPORAL_SQL_TOOL=$bin is not an executable file"; exit 1; }
  echo "sql=$bin"
}

print_ui() {
  if [[ -n "${TEMPORAL_UI_SERVER:-}" ]]; then echo "ui=$TEMPORAL_UI_SERVER"; return; fi
  if [[ ! -x "$ui_dir/server" ]]; then
    need_go "$ui_dir" "github.com/temporalio/ui-server/v2/cmd/server@$ui_version"
    say "building the Temporal UI server $ui_version into $ui_dir (about a minute, once)"
    build "$ui_dir" "github.com/temporalio/ui-server/v2/cmd/server@$ui_version"
  fi
  echo "ui=$ui_dir/server"
}

[[ $# -gt 0 ]] || set -- server sql schema
for what in "$@"; do
  case "$what" in
    server) print_server ;;
    sql) print_sql ;;
    schema) print_schema ;;
    ui) print_ui ;;
    *) say "unknown binary '$what' (expected server, sql, schema or ui)"; exit 2 ;;
  esac
done
