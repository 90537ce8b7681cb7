#!/bin/sh
# First start: initdb with POSTGRES_PASSWORD and create POSTGRES_DB. Then run postgres in the foreground.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (env_file .env.production)}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-ablage}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres-entrypoint: initialising a new cluster in $PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # trust on the socket only while initialising (no TCP listener then): createdb as $user
  # works even when $user is not the OS user; peer from the first real start on.
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF
# ablage reference stack
listen_addresses = '127.0.0.1'
port = 5432
unix_socket_directories = '/run/postgresql'
max_connections = 100
log_line_prefix = '%m [%p] %q%u@%d '
CONF
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  createdb -h /run/postgresql -U "$user" -O "$user" "$db"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  sed -i 's/^\(local[[:space:]].*[[:space:]]\)trust$/\1peer/' "$PGDATA/pg_hba.conf"
  echo "postgres-entrypoint: database $db created"
fi
exec postgres -D "$PGDATA" "$@"
