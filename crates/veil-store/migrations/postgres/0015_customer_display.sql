-- Per-rule masked displays (principle 2: the masked view needs no key). The customer row keeps the default
-- display of each field; a policy rule with another operator (a different mask, generalisation, hash, FPE
-- pseudonym, …) has its output computed when the value is written, or by the re-mask job after a policy change,
-- and stored here keyed by the operator's canonical JSON. A read whose display is missing shows the field fully
-- masked (fail safe) until the job has filled it in.
CREATE TABLE customer_display (
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    field        TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    display      TEXT    NOT NULL,
    PRIMARY KEY (customer_id, field, rule)
);
CREATE INDEX customer_display_rule ON customer_display (field, rule);

-- Progress of the re-mask job per policy version, so an interrupted job resumes after the last customer done.
CREATE TABLE remask_progress (
    policy_version  BIGINT  PRIMARY KEY,
    cursor          TEXT,
    done            BIGINT  NOT NULL,
    started_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
