-- The audit trail: append-only, hash-chained entries. Each entry's hash is SHA-256 over a canonical encoding of
-- the entry and the previous entry's hash (see veil-store's audit module); `audit_head` holds the sequence and
-- hash of the newest entry so that appenders serialise on one row. Entries never contain plaintext personal data.
CREATE TABLE audit_log (
    seq           BIGINT  PRIMARY KEY,
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
    prev_hash     BYTEA   NOT NULL,
    hash          BYTEA   NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- Which customers each entry concerns, for the data-subject report ("who looked at my data").
CREATE TABLE audit_subject (
    customer_id  TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, seq)
);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT  NOT NULL,
    hash  BYTEA   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Signed checkpoints: the head (sequence and hash) signed with the server's Ed25519 key, so that truncating the
-- log (which the chain alone cannot show) is detected.
CREATE TABLE audit_checkpoint (
    seq         BIGINT  PRIMARY KEY,
    head_hash   BYTEA   NOT NULL,
    at          BIGINT  NOT NULL,
    public_key  BYTEA   NOT NULL,
    signature   BYTEA   NOT NULL
);

CREATE FUNCTION veil_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE ON audit_subject
    FOR EACH ROW EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_subject_no_truncate BEFORE TRUNCATE ON audit_subject
    FOR EACH STATEMENT EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION veil_audit_append_only();

CREATE FUNCTION veil_audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq THEN
        RAISE EXCEPTION 'audit_head only moves forward';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION veil_audit_head_forward_only();
