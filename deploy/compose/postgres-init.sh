#!/bin/sh
# One database per service, each owned by its own role: a service can reach only its own data.
# Runs when the PostgreSQL volume is empty (docker-entrypoint-initdb.d), and again on every
# `docker compose up` (the one-shot `postgres-databases`, over TCP: PGHOST), so a volume made before a
# database was added here (the console's, notifications') gets it too. Idempotent: what exists is
# kept as it is (a role's password too).
set -eu

: "${ADVOCACY_DB_PASSWORD:?set ADVOCACY_DB_PASSWORD}"

# (the console is not a service, but keeps its sessions in a database of its own: ADR 0014)
for svc in content sharing metrics gamification console notifications; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="advocacy_${svc}" -v db="advocacy_${svc}" -v pw="$ADVOCACY_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
