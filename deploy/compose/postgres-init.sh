#!/bin/sh
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d).
# One database per service, each owned by its own role: a service can reach only its own data.
set -eu

: "${ADVOCACY_DB_PASSWORD:?set ADVOCACY_DB_PASSWORD}"

# (the console is not a service, but keeps its sessions in a database of its own: ADR 0014)
for svc in content sharing metrics gamification console notifications; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="advocacy_${svc}" -v db="advocacy_${svc}" -v pw="$ADVOCACY_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
