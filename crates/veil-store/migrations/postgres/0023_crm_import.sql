-- Customer imports (issue 9): one job per imported file, keyed by the file's SHA-256, remembering the last data
-- row whose batch committed — the batch's customers, the job's counters and the batch's issues are written in one
-- transaction with its audit entry — so that `veil import customers --resume` continues after a crash without
-- importing a row twice. The mapping is column numbers and header names to field names; issues name a row, a
-- column, a field and a reason code, never a value.
CREATE TABLE import_job (
    id            TEXT    PRIMARY KEY,
    file_sha256   TEXT    NOT NULL,
    actor_id      TEXT    NOT NULL REFERENCES app_user (id),
    owner_id      TEXT,
    format        TEXT    NOT NULL,
    has_header    BOOLEAN NOT NULL,
    mapping       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'done')),
    rows_done     BIGINT  NOT NULL DEFAULT 0,
    imported      BIGINT  NOT NULL DEFAULT 0,
    invalid       BIGINT  NOT NULL DEFAULT 0,
    duplicates    BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE INDEX import_job_file ON import_job (file_sha256, state);

CREATE TABLE import_issue (
    job_id                TEXT    NOT NULL REFERENCES import_job (id),
    row_number            BIGINT  NOT NULL,
    seq                   BIGINT  NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN ('invalid', 'duplicate')),
    column_name           TEXT,
    field                 TEXT,
    reason                TEXT    NOT NULL,
    message               TEXT    NOT NULL,
    existing_customer_id  TEXT,
    duplicate_of_row      BIGINT,
    PRIMARY KEY (job_id, row_number, seq)
);
