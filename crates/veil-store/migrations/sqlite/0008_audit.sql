-- The audit trail: append-only, hash-chained entries. Each entry's hash is SHA-256 over a canonical encoding of
-- the entry and the previous entry's hash (see veil-store's audit module); `audit_head` holds the sequence and
-- hash of the newest entry so that appenders serialise on one row. Entries never contain plaintext personal data.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            BIGINT  NOT NULL,
    actor_id      TEXT,
    actor_name    TEXT,
    actor_role    TEXT,
    source_ip     TEXT,
    action        TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    customer_ids  TEXT    NOT NULL,
    fields        TEXT    NOT NULL,
    grant_id      TEXT,
    purpose       TEXT,
    detail        TEXT    NOT NULL,
    prev_hash     BLOB    NOT NULL,
    hash          BLOB    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- Which customers each entry concerns, for the data-subject report ("who looked at my data").
CREATE TABLE audit_subject (
    customer_id  TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, seq)
) WITHOUT ROWID;

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT  NOT NULL,
    hash  BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Signed checkpoints: the head (sequence and hash) signed with the server's Ed25519 key, so that truncating the
-- log (which the chain alone cannot show) is detected.
CREATE TABLE audit_checkpoint (
    seq         BIGINT  PRIMARY KEY,
    head_hash   BLOB    NOT NULL,
    at          BIGINT  NOT NULL,
    public_key  BLOB    NOT NULL,
    signature   BLOB    NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_subject_no_update BEFORE UPDATE ON audit_subject
BEGIN SELECT RAISE(ABORT, 'audit_subject is append-only'); END;
CREATE TRIGGER audit_subject_no_delete BEFORE DELETE ON audit_subject
BEGIN SELECT RAISE(ABORT, 'audit_subject is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq
BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
