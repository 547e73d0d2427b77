-- The backup catalogue: one row per backup archive that was written completely (the file is renamed into place
-- before the row is inserted, so a backup killed half-way is never listed), with the latest verification.
-- `verify_detail` is a JSON object saying what was checked or why it failed; it names tables, counts and ids,
-- never personal data. This table itself is not copied into backups.
CREATE TABLE backup (
    id              TEXT    PRIMARY KEY,
    location        TEXT    NOT NULL,
    size_bytes      BIGINT  NOT NULL,
    sha256          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    backend         TEXT    NOT NULL,
    schema_version  BIGINT  NOT NULL,
    table_count     BIGINT  NOT NULL,
    total_rows      BIGINT  NOT NULL,
    created_by      TEXT,
    created_at      BIGINT  NOT NULL,
    verified_at     BIGINT,
    verify_ok       BOOLEAN,
    verify_detail   TEXT,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX backup_created ON backup (created_at);
