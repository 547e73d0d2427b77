-- Retention: the oldest audit entries may be pruned, as a prefix only, after they were archived. Each prune
-- leaves an anchor (the last pruned entry's sequence and hash, and the archive's SHA-256) from which the chain is
-- verified; the prune itself is an audit entry. The delete guards now allow deleting entries up to the newest
-- anchor and nothing else.
CREATE TABLE audit_prune (
    upto_seq        BIGINT  PRIMARY KEY,
    upto_hash       BYTEA   NOT NULL,
    archive_sha256  TEXT    NOT NULL,
    pruned_at       BIGINT  NOT NULL
);
CREATE TRIGGER audit_prune_append_only BEFORE UPDATE OR DELETE ON audit_prune
    FOR EACH ROW EXECUTE FUNCTION veil_audit_append_only();
CREATE TRIGGER audit_prune_no_truncate BEFORE TRUNCATE ON audit_prune
    FOR EACH STATEMENT EXECUTE FUNCTION veil_audit_append_only();

CREATE FUNCTION veil_audit_prunable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= COALESCE((SELECT MAX(upto_seq) FROM audit_prune), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION veil_audit_prunable();
DROP TRIGGER audit_subject_append_only ON audit_subject;
CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE ON audit_subject
    FOR EACH ROW EXECUTE FUNCTION veil_audit_prunable();
