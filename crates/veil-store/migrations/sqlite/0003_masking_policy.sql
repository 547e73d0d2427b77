-- Masking policies are versioned documents, append-only: the highest version is in force, and every change keeps
-- who made it, when and why.
CREATE TABLE masking_policy (
    version     BIGINT  PRIMARY KEY,
    document    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_by  TEXT    REFERENCES app_user (id),
    created_at  BIGINT  NOT NULL
);
