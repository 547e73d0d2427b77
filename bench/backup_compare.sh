#!/usr/bin/env bash
# Backup and restore of one Veil database, side by side in one run on the same data:
#   veil backup create / verify / restore            (SQLite: a page image, format 2; then PostgreSQL: format 1)
#   sqlite3 .backup, then age                        (restore: age -d)
#   pg_dump | zstd | age                             (restore: age -d | zstd -d | psql)
# The SQLite database is filled by veil-bench to N customers (reused when it already holds them); the PostgreSQL
# database is loaded from the Veil backup (so it is the same data). Prints one line per step and a JSON summary.
# Not part of CI. Usage:
#   N=1000000 WORK=/tmp/veil-backup-bench PG_URL=postgres://postgres@127.0.0.1:5432 bench/backup_compare.sh
# Needs: veil and veil-bench (release: cargo build --release -p veil -p veil-bench; BIN= their directory),
# sqlite3, age, age-keygen; for PostgreSQL also pg_dump, psql, zstd (PG_URL unset: that half is skipped).
set -euo pipefail

N=${N:-1000000}
WORK=${WORK:-/tmp/veil-backup-bench}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
PG_URL=${PG_URL:-}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

for tool in sqlite3 age age-keygen; do
  command -v "$tool" >/dev/null || { echo "missing $tool (Debian: apt-get install sqlite3 age)" >&2; exit 2; }
done

now() { date +%s.%N; }
declare -A SECONDS_OF BYTES_OF
step() { # step NAME BYTES COMMAND...: runs it, records seconds, prints seconds and MB/s of BYTES
  local name=$1 bytes=$2; shift 2
  sync # every step starts with no dirty pages of an earlier one to write back (not timed)
  local started; started=$(now)
  "$@"
  local elapsed; elapsed=$(echo "$(now) - $started" | bc -l)
  SECONDS_OF[$name]=$(printf '%.3f' "$elapsed")
  BYTES_OF[$name]=$bytes
  printf '%-28s %8.1f s  %8.1f MB/s  (%s bytes)\n' "$name" "$elapsed" "$(echo "$bytes / 1000000 / $elapsed" | bc -l)" "$bytes"
}
size() { stat -c %s "$1"; }

# --- data: N customers in SQLite (veil-bench; resumable, reused) ---
echo "filling $WORK/veil.db to $N customers (veil-bench)" >&2
"$BIN/veil-bench" --database-url "sqlite://$WORK/veil.db" --key-dir "$WORK" --customers "$N" \
  --throughput-customers 0 --requests 1 >/dev/null
sqlite3 "$WORK/veil.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
DB_BYTES=$(size "$WORK/veil.db")
CUSTOMERS=$(sqlite3 "$WORK/veil.db" 'SELECT count(*) FROM customer;')

[ -f "$WORK/backup-identity.txt" ] || age-keygen -o "$WORK/backup-identity.txt" 2>/dev/null
RECIPIENT=$(age-keygen -y "$WORK/backup-identity.txt")
rm -rf "$WORK/veil-backups" "$WORK"/restored*.db* "$WORK/copy.db" "$WORK/copy.db.age" "$WORK/dump.sql.zst.age"

veil() {
  VEIL_DATABASE_URL=${DB_URL:-sqlite://$WORK/veil.db} VEIL_MASTER_KEY_FILE="$WORK/master.key" \
  VEIL_BACKUP_RECIPIENTS="$RECIPIENT" VEIL_BACKUP_IDENTITY="$WORK/backup-identity.txt" \
  VEIL_BACKUP_DIR="$WORK/veil-backups" VEIL_LOG=warn "$BIN/veil" --data-dir "$WORK" "$@"
}
backup_id() { sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$WORK/created.json"; }
veil_create() { veil --format json backup create > "$WORK/created.json"; }
veil_verify() { veil backup verify "$1" >/dev/null; }
veil_restore() { veil backup restore "$1" --db "$2" >/dev/null; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== SQLite: $CUSTOMERS customers, $DB_BYTES bytes (load average $LOAD_BEFORE)"
step veil_sqlite_create "$DB_BYTES" veil_create
ID=$(backup_id)
ARCHIVE=$(ls "$WORK"/veil-backups/*.age)
ARCHIVE_BYTES=$(size "$ARCHIVE")
step veil_sqlite_verify "$DB_BYTES" veil_verify "$ID"
step veil_sqlite_restore_sqlite "$DB_BYTES" veil_restore "$ID" "sqlite://$WORK/restored.db"
step sqlite3_backup "$DB_BYTES" sqlite3 "$WORK/veil.db" ".backup '$WORK/copy.db'"
step age_encrypt "$DB_BYTES" age -r "$RECIPIENT" -o "$WORK/copy.db.age" "$WORK/copy.db"
AGE_BYTES=$(size "$WORK/copy.db.age")
rm -f "$WORK/copy.db"
step age_decrypt_restore "$DB_BYTES" age -d -i "$WORK/backup-identity.txt" -o "$WORK/restored-plain.db" "$WORK/copy.db.age"
SQLITE_CHAIN=$(printf '%.3f' "$(echo "${SECONDS_OF[sqlite3_backup]} + ${SECONDS_OF[age_encrypt]}" | bc -l)")

PG_JSON=""
if [ -n "$PG_URL" ]; then
  for tool in pg_dump psql zstd; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
  psql -q "$PG_URL/postgres" -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS veil_backup_bench' -c 'DROP DATABASE IF EXISTS veil_backup_bench_restored' \
    -c 'CREATE DATABASE veil_backup_bench' -c 'CREATE DATABASE veil_backup_bench_restored' >/dev/null
  PG_DB="$PG_URL/veil_backup_bench"
  echo "== PostgreSQL: the same data, loaded from the Veil backup"
  step veil_restore_into_postgres "$DB_BYTES" veil_restore "$ID" "$PG_DB"
  PG_BYTES=$(psql -tA "$PG_DB" -c 'SELECT pg_database_size(current_database())')
  rm -rf "$WORK/veil-backups"
  DB_URL=$PG_DB
  step veil_pg_create "$PG_BYTES" veil_create
  PG_ID=$(backup_id)
  PG_ARCHIVE_BYTES=$(size "$(ls "$WORK"/veil-backups/*.age)")
  step veil_pg_verify "$PG_BYTES" veil_verify "$PG_ID"
  DB_URL=
  step pg_dump_zstd_age "$PG_BYTES" sh -c "pg_dump '$PG_DB' | zstd -q -T0 | age -r '$RECIPIENT' > '$WORK/dump.sql.zst.age'"
  DUMP_BYTES=$(size "$WORK/dump.sql.zst.age")
  step age_zstd_psql_restore "$PG_BYTES" sh -c "age -d -i '$WORK/backup-identity.txt' '$WORK/dump.sql.zst.age' | zstd -d -q | psql -q -v ON_ERROR_STOP=1 '$PG_URL/veil_backup_bench_restored' >/dev/null"
  PG_JSON=$(printf ', "postgres": {"database_bytes": %s, "veil_archive_bytes": %s, "pg_dump_zstd_age_bytes": %s, "veil_create_s": %s, "veil_verify_s": %s, "pg_dump_zstd_age_s": %s, "psql_restore_s": %s, "veil_restore_into_postgres_s": %s}' \
    "$PG_BYTES" "$PG_ARCHIVE_BYTES" "$DUMP_BYTES" "${SECONDS_OF[veil_pg_create]}" "${SECONDS_OF[veil_pg_verify]}" \
    "${SECONDS_OF[pg_dump_zstd_age]}" "${SECONDS_OF[age_zstd_psql_restore]}" "${SECONDS_OF[veil_restore_into_postgres]}")
fi

printf '{"customers": %s, "load_average_before": "%s", "load_average_after": "%s", "sqlite": {"database_bytes": %s, "veil_archive_bytes": %s, "sqlite3_age_bytes": %s, "veil_create_s": %s, "veil_verify_s": %s, "veil_restore_s": %s, "sqlite3_backup_s": %s, "age_encrypt_s": %s, "sqlite3_age_chain_s": %s, "age_decrypt_s": %s}%s}\n' \
  "$CUSTOMERS" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" "$DB_BYTES" "$ARCHIVE_BYTES" "$AGE_BYTES" "${SECONDS_OF[veil_sqlite_create]}" "${SECONDS_OF[veil_sqlite_verify]}" \
  "${SECONDS_OF[veil_sqlite_restore_sqlite]}" "${SECONDS_OF[sqlite3_backup]}" "${SECONDS_OF[age_encrypt]}" "$SQLITE_CHAIN" \
  "${SECONDS_OF[age_decrypt_restore]}" "$PG_JSON"
