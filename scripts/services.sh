#!/usr/bin/env bash
# Throwaway services for the test run: a PostgreSQL server (Debian's postgresql, initdb in a temp
# dir, listening on a Unix socket and 127.0.0.1 only) and a two-node local Ray cluster (a head and
# one more node on loopback).
#   eval "$(scripts/services.sh start)"   prints the exports the tests read:
#                                         BEDSIDE_TEST_POSTGRES (a SQLAlchemy URL), BEDSIDE_TEST_RAY
#   scripts/services.sh stop              stops both and removes the temp dir (idempotent)
# PostgreSQL refuses to run as root: as root the server runs as the unprivileged `nobody` user.
# Ray is started only when it is installed (`pip install -e '.[cluster]'`).
set -euo pipefail
STATE="${BEDSIDE_SERVICES_DIR:-/tmp/bedside-services}"
PG_PORT="${BEDSIDE_PG_PORT:-54329}"
RAY_PORT="${BEDSIDE_RAY_PORT:-63790}"

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  echo "services: PostgreSQL is not installed; run scripts/setup.sh --dev (apt: postgresql)" >&2
  return 1
}

as_pg() {  # run a command as the server's (non-root) user
  if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

start_pg() {
  local bin; bin="$(pg_bin)"
  mkdir -p "$STATE"
  local data="$STATE/pgdata" sock="$STATE/pgsock"
  rm -rf "$data" "$sock"
  mkdir -p "$data" "$sock"
  [ "$(id -u)" -eq 0 ] && chown nobody "$data" "$sock" && chmod 0755 "$STATE"
  as_pg "$bin/initdb" -D "$data" -U bedside --auth=trust -E UTF8 >"$STATE/initdb.log" 2>&1 || {
    cat "$STATE/initdb.log" >&2; return 1; }
  as_pg "$bin/pg_ctl" -D "$data" -l "$sock/pg.log" -w -t 30 \
    -o "-k $sock -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$sock/pg.log" >&2; return 1; }
  as_pg "$bin/createdb" -h "$sock" -p "$PG_PORT" -U bedside bedside_test
  echo "export BEDSIDE_TEST_POSTGRES=postgresql://bedside@127.0.0.1:$PG_PORT/bedside_test"
}

stop_pg() {
  local bin
  bin="$(pg_bin 2>/dev/null)" || return 0
  [ -f "$STATE/pgdata/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$STATE/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  return 0
}

start_ray() {
  python3 -c "import ray" 2>/dev/null || { echo "services: ray not installed; skipping it" >&2; return 0; }
  mkdir -p "$STATE/ray"
  # --block-less head plus a second node with its own raylet, both on 127.0.0.1
  ray start --head --node-ip-address=127.0.0.1 --port="$RAY_PORT" --num-cpus=2 \
    --include-dashboard=false --disable-usage-stats --temp-dir="$STATE/ray" >"$STATE/ray-head.log" 2>&1 || {
    cat "$STATE/ray-head.log" >&2; return 1; }
  ray start --address="127.0.0.1:$RAY_PORT" --node-ip-address=127.0.0.1 --num-cpus=2 \
    --resources='{"bedside_node2": 1}' --disable-usage-stats >"$STATE/ray-node.log" 2>&1 || {
    cat "$STATE/ray-node.log" >&2; return 1; }
  echo "export BEDSIDE_TEST_RAY=127.0.0.1:$RAY_PORT"
}

stop_ray() {
  command -v ray >/dev/null 2>&1 && [ -d "$STATE/ray" ] && ray stop --force >/dev/null 2>&1 || true
  return 0
}

case "${1:-}" in
  start) stop_ray; stop_pg; start_pg; start_ray ;;
  stop) stop_ray; stop_pg; rm -rf "$STATE" ;;
  *) echo "usage: scripts/services.sh start|stop" >&2; exit 2 ;;
esac
