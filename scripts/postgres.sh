#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on 127.0.0.1, for tests and trying AILEDGER_DATABASE_URL.
#   bash scripts/postgres.sh start DIR [PORT]   initdb in DIR, start; prints the server URL
#   bash scripts/postgres.sh stop DIR           stop it (DIR can then be deleted)
# The URL names the `postgres` database; create others with createdb or CREATE DATABASE.
# initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
# (DIR is chown-ed to it) and every server command runs through runuser.
set -euo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2; }
(($# >= 2)) || usage
action="$1" dir="$2" port="${3:-}"

# Debian's packages keep the server programs off the PATH.
if ! command -v initdb >/dev/null 2>&1; then
    for bin in /usr/lib/postgresql/*/bin; do
        [[ -x "$bin/initdb" ]] && PATH="$bin:$PATH" && break
    done
fi

as_owner=()
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || { echo "postgres.sh: no 'postgres' user to run the server as" >&2; exit 1; }
    as_owner=(runuser -u postgres --)
fi

case "$action" in
start)
    command -v initdb >/dev/null 2>&1 || {
        echo "postgres.sh: initdb is not on PATH; install PostgreSQL (apt-get install postgresql)" >&2
        exit 1
    }
    if [[ -z "$port" ]]; then
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fi
    mkdir -p "$dir"
    ((${#as_owner[@]})) && chown postgres: "$dir"
    "${as_owner[@]}" initdb -A trust --no-sync -U postgres -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # fsync off: a throwaway server trades durability for speed; never use this for data.
    "${as_owner[@]}" pg_ctl -w -D "$dir/data" -l "$dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    "${as_owner[@]}" pg_ctl -D "$dir/data" -m fast -w stop >/dev/null
    ;;
*)
    usage
    ;;
esac
