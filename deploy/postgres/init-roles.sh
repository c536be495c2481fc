#!/bin/sh
# One Postgres role per opendew service, each owning its own schema and
# nothing else (issue #15, finding 7): kms-service's role alone can touch
# key material, the gateway's only the identity store. No role may create
# schemas or objects outside its own; PUBLIC loses CONNECT and CREATE.
#
# Run once by the database's initialisation (the postgres image runs it
# from /docker-entrypoint-initdb.d; deploy/k8s/overlays/dev mounts it the
# same way) as the bootstrap superuser, and by the test suite against CI's
# server (tests/least_privilege.rs). Settings, all from the environment:
#   POSTGRES_USER, POSTGRES_DB     the superuser and the database (as the image sets them)
#   OPENDEW_ROLE_PREFIX            role name prefix (default opendew): roles <prefix>_kms, _csms, _iam
#   OPENDEW_KMS_PASSWORD_FILE, OPENDEW_CSMS_PASSWORD_FILE, OPENDEW_IAM_PASSWORD_FILE
#                                  each role's password (default /run/secrets/db_password_<service>);
#                                  a missing file makes a role without a password (trust or peer auth)
#   PGHOST, PGPORT                 as libpq reads them (default: the local socket)
set -eu
prefix="${OPENDEW_ROLE_PREFIX:-opendew}"
db="${POSTGRES_DB:?}"
sql() { psql -v ON_ERROR_STOP=1 -q -U "${POSTGRES_USER:?}" -d "$db" "$@"; }

for service in kms csms iam; do
  role="${prefix}_${service}"
  eval "file=\${OPENDEW_$(echo "$service" | tr a-z A-Z)_PASSWORD_FILE:-/run/secrets/db_password_$service}"
  if [ -f "$file" ]; then
    password="$(cat "$file")"
    sql -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
  else
    sql -v role="$role" <<'SQL'
CREATE ROLE :"role" LOGIN;
SQL
  fi
  sql -v role="$role" -v schema="$service" -v db="$db" <<'SQL'
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
GRANT CONNECT ON DATABASE :"db" TO :"role";
SQL
done

sql -v db="$db" <<'SQL'
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
