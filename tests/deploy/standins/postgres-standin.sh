#!/bin/bash
# What the official postgres image's entry point does, as far as the stack uses it:
# initialise with POSTGRES_USER/PASSWORD/DB, run /docker-entrypoint-initdb.d/*.sh once, serve.
set -euo pipefail
data=/var/lib/postgresql/data
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" /run/postgresql
    chown -R postgres:postgres "$data" /run/postgresql
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    chown postgres "$password_file"
    as_postgres initdb -D "$data" -U "$POSTGRES_USER" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
    as_postgres pg_ctl -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
    as_postgres psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
        -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" >/dev/null
    for script in /docker-entrypoint-initdb.d/*.sh; do
        [ -f "$script" ] && as_postgres env PGHOST=/run/postgresql bash "$script"
    done
    as_postgres pg_ctl -D "$data" -m fast -w stop >/dev/null
fi
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$data" -c listen_addresses='*'
