#!/usr/bin/env bash
# PostgreSQL for the tests of the PostgreSQL store (test/pgtest, core/store/postgres).
#
#   hack/postgres.sh install                 install Debian's postgresql when missing; print
#                                            the folder of its binaries on the last line
#   hack/postgres.sh start DIR PORT [PID]    create a throw-away cluster in DIR (a new or
#                                            empty folder) and start it on 127.0.0.1:PORT with
#                                            its socket in DIR; print its superuser DSN on the
#                                            last line. With PID, the cluster stops and DIR is
#                                            removed once process PID has exited (a test
#                                            binary that was killed leaves nothing running).
#   hack/postgres.sh restart DIR             restart the cluster in DIR (fast shutdown: open
#                                            connections are closed), for fault tests
#   hack/postgres.sh stop DIR                stop the cluster in DIR and remove DIR
#
# The cluster trusts local connections (user postgres, no password) and runs with fsync off:
# it is for tests only. PG_LISTEN adds listen addresses beside 127.0.0.1 (comma-separated, for
# example the address of a test cluster's bridge) and PG_ALLOW a network whose clients may
# connect with a password (scram-sha-256; never trust) to those addresses. initdb and postgres refuse to run as root, so as root they run as the
# 'postgres' user that the Debian package creates. Set PG_BIN to use other binaries.
# Exits non-zero with a message naming the package to install when PostgreSQL is missing and
# cannot be installed, so the tests fail rather than skip.
set -euo pipefail

PKG=postgresql
log() { printf '[postgres] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] && { echo "$PG_BIN"; return 0; }
    return 1
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

install_pg() {
  local bin
  if bin=$(find_bin); then
    echo "$bin"
    return 0
  fi
  # Test binaries start in parallel: one installs while the others wait, then find it.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/twofold-postgres-install.lock"
    flock 9
    if bin=$(find_bin); then
      echo "$bin"
      return 0
    fi
  fi
  [[ -n "${PG_BIN:-}" ]] && die "PG_BIN=$PG_BIN has no initdb and pg_ctl: install the Debian package '$PKG' or fix PG_BIN"
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get is not available: install the Debian package '$PKG' (PostgreSQL server binaries) and run again"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
      die "not root and no sudo: install the Debian package '$PKG' as root and run again"
    sudo=(sudo -n)
  fi
  log "installing the Debian package '$PKG'"
  "${sudo[@]}" apt-get update >&2 ||
    die "apt-get update failed: install the Debian package '$PKG' and run again"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "$PKG" >&2 ||
    die "apt-get install $PKG failed: install the Debian package '$PKG' and run again"
  bin=$(find_bin) || die "the package '$PKG' is installed but initdb and pg_ctl were not found under /usr/lib/postgresql"
  echo "$bin"
}

# as_owner runs a command as the cluster's owner: 'postgres' when we are root, else ourselves.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1 port=$2 watch=${3:-}
  [[ "$port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
  local bin
  bin=$(install_pg)
  mkdir -p "$dir"
  if [[ "$(id -u)" == 0 ]]; then
    id -u postgres >/dev/null 2>&1 || die "there is no 'postgres' user to run the server as (it comes with the Debian package '$PKG')"
    chown postgres: "$dir"
  fi
  chmod 700 "$dir"
  as_owner test -w "$dir" ||
    die "the cluster's owner cannot write $dir: use a folder whose parents it can enter (for example under /tmp)"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
  fi
  local listen=127.0.0.1
  if [[ -n "${PG_LISTEN:-}" ]]; then
    [[ "$PG_LISTEN" =~ ^[0-9a-f.:,]+$ ]] || die "PG_LISTEN must be comma-separated IP addresses, got '$PG_LISTEN'"
    listen+=",$PG_LISTEN"
  fi
  if [[ -n "${PG_ALLOW:-}" ]]; then
    [[ "$PG_ALLOW" =~ ^[0-9a-f.:]+/[0-9]+$ ]] || die "PG_ALLOW must be one network in CIDR form, got '$PG_ALLOW'"
    grep -qxF "host all all $PG_ALLOW scram-sha-256" "$dir/data/pg_hba.conf" ||
      echo "host all all $PG_ALLOW scram-sha-256" | as_owner tee -a "$dir/data/pg_hba.conf" >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=$listen -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null 2>&1; then
    die "PostgreSQL did not start on port $port: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
  fi
  if [[ -n "$watch" ]]; then
    # A watchdog detached from our output, so whoever reads this script's output is not kept
    # waiting by it.
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null; do sleep 1; done
      if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$2/pg_ctl" -D "$3/data" -m immediate stop
      else "$2/pg_ctl" -D "$3/data" -m immediate stop; fi
      rm -rf "$3"' watchdog "$watch" "$bin" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

restart() {
  local dir=$1 bin
  bin=$(find_bin) || die "PostgreSQL binaries not found: install the Debian package '$PKG'"
  [[ -f "$dir/data/postmaster.pid" ]] || die "no cluster runs in $dir"
  # pg_ctl restart starts the server with the options it was started with.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 30 restart >/dev/null 2>&1 ||
    die "PostgreSQL did not restart: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
}

stop() {
  local dir=$1 bin
  bin=$(find_bin) || die "PostgreSQL binaries not found: install the Debian package '$PKG'"
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || log "pg_ctl stop failed; removing $dir anyway"
  fi
  rm -rf "$dir"
}

case "${1:-}" in
install) install_pg ;;
start)
  [[ $# -ge 3 ]] || die "usage: $0 start DIR PORT [PID]"
  start "$2" "$3" "${4:-}"
  ;;
restart)
  [[ $# -eq 2 ]] || die "usage: $0 restart DIR"
  restart "$2"
  ;;
stop)
  [[ $# -eq 2 ]] || die "usage: $0 stop DIR"
  stop "$2"
  ;;
*) die "usage: $0 install | start DIR PORT [PID] | restart DIR | stop DIR" ;;
esac
