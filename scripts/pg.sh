#!/usr/bin/env bash
# A private PostgreSQL server for tests: initdb into DIR/data, listening only on a Unix
# socket in DIR (no TCP), tuned for speed (fsync=off). Installs Debian's `postgresql`
# package when no server binaries are found. As root, the server runs as the system user
# `flowctl-pg` (created when missing), since PostgreSQL refuses to run as root.
#
#   scripts/pg.sh start DIR        # prints the connection URI as its last line on stdout
#   scripts/pg.sh stop DIR         # fast shutdown; a no-op when not running
#   scripts/pg.sh uri DIR          # prints the connection URI
#   scripts/pg.sh psql DIR [ARG]…  # runs psql against the server's database
#
# The URI names role `flow` (password `flow`, owner of database `flow`); every local
# connection must authenticate with a password (scram-sha-256), so wrong passwords fail.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { die "usage: pg.sh start|stop|uri|psql DIR [psql arguments]"; }

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
shift 2

readonly port=5432 role=flow password=flow database=flow run_user=flowctl-pg

# The newest server's bin directory, e.g. /usr/lib/postgresql/15/bin.
find_bin() {
  local d
  while read -r d; do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/psql ]] && { echo "$d"; return 0; }
  done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r)
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [[ -x $d/initdb && -x $d/pg_ctl && -x $d/psql ]] && { echo "$d"; return 0; }
  return 1
}

# Percent-encodes a path for a URI query parameter (bytewise).
urlencode() {
  local LC_ALL=C s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [a-zA-Z0-9/._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

uri() { echo "postgresql://$role:$password@/$database?host=$(urlencode "$dir")&port=$port"; }

if [[ $cmd == stop && ! -d $dir ]]; then exit 0; fi
[[ $cmd == start || -d $dir ]] || die "$dir does not exist"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
data=$dir/data
socket=$dir/.s.PGSQL.$port
# Unix socket paths are limited to 107 bytes (sun_path).
((${#socket} <= 107)) || die "the socket path $socket is too long: use a shorter DIR"

if [[ $cmd == uri ]]; then uri; exit 0; fi

if ! bin=$(find_bin); then
  [[ $cmd == stop ]] && exit 0  # nothing can be running without the binaries
  # Tests run in parallel: one pg.sh installs while the others wait for it.
  exec 9>"${TMPDIR:-/tmp}/flowctl-pg-install.$(id -u).lock"
  flock 9
  if ! bin=$(find_bin); then
    echo "pg.sh: installing postgresql" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin=$(find_bin) || die "no PostgreSQL server binaries after installing postgresql"
  fi
  exec 9>&-
fi

as_user=()
if [[ $(id -u) -eq 0 ]]; then
  # A concurrent pg.sh may create the user first: check again when useradd fails.
  id -u "$run_user" >/dev/null 2>&1 ||
    useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$run_user" 2>/dev/null ||
    id -u "$run_user" >/dev/null 2>&1 || die "cannot create the system user $run_user"
  as_user=(runuser -u "$run_user" --)
fi

running() { [[ -f $data/postmaster.pid ]] && "${as_user[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

case $cmd in
  start)
    if running; then uri; exit 0; fi
    if [[ ${#as_user[@]} -gt 0 ]]; then
      chown "$run_user" "$dir"
      "${as_user[@]}" test -w "$dir" ||
        die "$run_user cannot write to $dir: every parent directory must be searchable by others (use a DIR under /tmp)"
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
      printf '%s\n' "$password" >"$dir/pwfile"
      [[ ${#as_user[@]} -eq 0 ]] || chown "$run_user" "$dir/pwfile"
      chmod 600 "$dir/pwfile"
      # The bootstrap superuser is `postgres` (same password); tests use the role `flow`.
      if ! "${as_user[@]}" "$bin/initdb" -D "$data" -U postgres --pwfile="$dir/pwfile" \
          --auth=scram-sha-256 --encoding=UTF8 --locale=C --no-sync --no-instructions \
          >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed (log: $dir/initdb.log)"
      fi
      rm -f "$dir/pwfile"
      escaped_dir=${dir//\'/\'\'}
      cat >>"$data/postgresql.conf" <<EOF

# pg.sh: a throwaway server for tests, reachable only through its socket in $dir.
listen_addresses = ''
unix_socket_directories = '$escaped_dir'
port = $port
max_connections = 50
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 1GB
wal_level = minimal
max_wal_senders = 0
shared_buffers = 128MB
EOF
      fresh=1
    fi
    if ! "${as_user[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 -s start >/dev/null; then
      tail -n 20 "$dir/server.log" >&2 || true
      die "the server did not start (log: $dir/server.log)"
    fi
    if [[ ${fresh:-0} -eq 1 ]]; then
      "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
        "postgresql:///postgres?host=$(urlencode "$dir")&port=$port&user=postgres&password=$password" \
        -c "CREATE ROLE $role LOGIN PASSWORD '$password'" \
        -c "CREATE DATABASE $database OWNER $role" >/dev/null ||
        die "cannot create role $role and database $database"
    fi
    uri
    ;;
  stop)
    if running; then
      "${as_user[@]}" "$bin/pg_ctl" -D "$data" -m fast -w -t 30 -s stop
    fi
    ;;
  psql)
    exec "$bin/psql" -X -v ON_ERROR_STOP=1 "$(uri)" "$@"
    ;;
  *) usage ;;
esac
