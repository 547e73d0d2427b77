-- Retention: the oldest audit entries may be pruned, as a prefix only, after they were archived. Each prune
-- leaves an anchor (the last pruned entry's sequence and hash, and the archive's SHA-256) from which the chain is
-- verified; the prune itself is an audit entry. The delete guards now allow deleting entries up to the newest
-- anchor and nothing else.
CREATE TABLE audit_prune (
    upto_seq        BIGINT  PRIMARY KEY,
    upto_hash       BLOB    NOT NULL,
    archive_sha256  TEXT    NOT NULL,
    pruned_at       BIGINT  NOT NULL
);
CREATE TRIGGER audit_prune_no_update BEFORE UPDATE ON audit_prune
BEGIN SELECT RAISE(ABORT, 'audit_prune is append-only'); END;
CREATE TRIGGER audit_prune_no_delete BEFORE DELETE ON audit_prune
BEGIN SELECT RAISE(ABORT, 'audit_prune is append-only'); END;

DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT MAX(upto_seq) FROM audit_prune), 0)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
DROP TRIGGER audit_subject_no_delete;
CREATE TRIGGER audit_subject_no_delete BEFORE DELETE ON audit_subject
WHEN OLD.seq > COALESCE((SELECT MAX(upto_seq) FROM audit_prune), 0)
BEGIN SELECT RAISE(ABORT, 'audit_subject is append-only'); END;
