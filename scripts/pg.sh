#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for the tests, the quickstart and benchmarks.
#
#   scripts/pg.sh start    initialise (first time) and start; idempotent
#   scripts/pg.sh stop     stop the server; the cluster and its data stay for the next start
#   scripts/pg.sh destroy  stop the server and delete the cluster with everything loaded into it
#   scripts/pg.sh status   exit 0 if running
#   scripts/pg.sh env      print `export DATABASE_URL=…` for eval
#   scripts/pg.sh psql …   run psql against it
#   scripts/pg.sh ca       print the path of the CA that signed the server's certificate
#
# The server also accepts TLS (sslmode=require … verify-full): a throwaway CA
# signs a certificate for localhost and 127.0.0.1 at initialisation (openssl);
# the cluster's folder also holds an unrelated CA, for tests that must fail
# verification (tls/untrusted-ca.crt).
# Settings: FERRY_PG_PORT (54329), FERRY_PG_DIR (/tmp/ferry-pg-<port>),
# FERRY_PG_CONF (extra postgresql.conf lines, e.g. for benchmarks).
# Installs Debian's postgresql package when initdb is missing and we are root.
set -euo pipefail

PORT=${FERRY_PG_PORT:-54329}
PGDIR=${FERRY_PG_DIR:-${TMPDIR:-/tmp}/ferry-pg-$PORT}
URL="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"

say() { echo "pg.sh: $*" >&2; }

find_bindir() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  return 1
}

ensure_installed() {
  if BINDIR=$(find_bindir) && command -v psql >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian package postgresql)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql postgresql-client >/dev/null
    # Debian starts a cluster on 5432; ours is separate and on its own port.
    BINDIR=$(find_bindir) || { say "postgresql installed but initdb not found"; exit 1; }
    return
  fi
  say "PostgreSQL server binaries (initdb, pg_ctl) and psql are needed."
  say "Install them, e.g. 'sudo apt-get install postgresql' or 'brew install postgresql@15', and retry."
  exit 1
}

# PostgreSQL refuses to run as root: run it as an unprivileged user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$OWNER" -- "$@"
  else
    "$@"
  fi
}

pick_owner() {
  OWNER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
      OWNER=postgres
    else
      id ferrypg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ferrypg
      OWNER=ferrypg
    fi
  fi
}

running() {
  [ -f "$PGDIR/postmaster.pid" ] && as_owner "$BINDIR/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1
}

start() {
  ensure_installed
  pick_owner
  if running; then say "already running on 127.0.0.1:$PORT ($PGDIR)"; return; fi
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    mkdir -p "$PGDIR"
    chmod 700 "$PGDIR"
    [ "$(id -u)" = 0 ] && chown "$OWNER" "$PGDIR"
    as_owner "$BINDIR/initdb" -D "$PGDIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PGDIR.initdb.log" 2>&1 \
      || as_owner "$BINDIR/initdb" -D "$PGDIR" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$PGDIR.initdb.log" 2>&1 \
      || { cat "$PGDIR.initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $PORT"
      echo "unix_socket_directories = '$PGDIR'"
      echo "max_connections = 200"
      # Parallel append commits its COPY streams together by two-phase commit.
      echo "max_prepared_transactions = 64"
      echo "shared_buffers = 256MB"
      # A throwaway cluster: durability is not the point, speed is.
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
      echo "max_wal_size = 4GB"
      echo "timezone = 'UTC'"
      echo "log_min_messages = warning"
      if [ -n "${FERRY_PG_CONF:-}" ]; then printf '%s\n' "$FERRY_PG_CONF"; fi
    } | as_owner tee -a "$PGDIR/postgresql.conf" >/dev/null
    make_tls
  fi
  as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$PGDIR/server.log" >&2; exit 1; }
  say "running on 127.0.0.1:$PORT ($PGDIR); stop with scripts/pg.sh stop"
}

# A CA and a server certificate (localhost, 127.0.0.1) for TLS tests, plus an
# unrelated CA; the server key is the cluster owner's, mode 600.
make_tls() {
  command -v openssl >/dev/null || { say "openssl not found: the server will not offer TLS"; return; }
  local t="$PGDIR/tls"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ferry test CA" \
    -keyout "$t/ca.key" -out "$t/ca.crt" >/dev/null 2>&1
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=untrusted test CA" \
    -keyout "$t/untrusted-ca.key" -out "$t/untrusted-ca.crt" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$t/server.key" -out "$t/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$t/ext.cnf"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 30 -extfile "$t/ext.cnf" -out "$t/server.crt" >/dev/null 2>&1
  chmod 644 "$t"/*.crt
  chmod 600 "$t/server.key"
  [ "$(id -u)" = 0 ] && chown -R "$OWNER" "$t"
  {
    echo "ssl = on"
    echo "ssl_cert_file = '$t/server.crt'"
    echo "ssl_key_file = '$t/server.key'"
  } | as_owner tee -a "$PGDIR/postgresql.conf" >/dev/null
}

stop() {
  BINDIR=$(find_bindir) || return 0
  pick_owner
  if running; then
    as_owner "$BINDIR/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null || true
    say "stopped; the data stays in $PGDIR (scripts/pg.sh start resumes it, scripts/pg.sh destroy deletes it)"
  fi
}

destroy() {
  stop
  if [ -e "$PGDIR" ]; then
    rm -rf "$PGDIR" "$PGDIR.initdb.log"
    say "deleted the cluster $PGDIR and everything loaded into it"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  destroy) destroy ;;
  status) BINDIR=$(find_bindir) || exit 1; pick_owner; running ;;
  env) echo "export DATABASE_URL='$URL'" ;;
  url) echo "$URL" ;;
  ca) echo "$PGDIR/tls/ca.crt" ;;
  psql) shift; exec psql "$URL" "$@" ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
