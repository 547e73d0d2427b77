-- Governed unmasking: consents, unmask requests with their checks and risk assessments, approvals, and the
-- grants they yield. Free text (purpose detail, reasons) is stored with personal data masked. Risk assessments
-- are kept at least as long as the audit trail's governance retention (three years); nothing deletes them.
CREATE TABLE consent (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    purposes         TEXT    NOT NULL,
    fields           TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    evidence_sha256  TEXT,
    evidence_ref     TEXT,
    sensitive        BOOLEAN NOT NULL,
    third_party      BOOLEAN NOT NULL,
    granted_at       BIGINT  NOT NULL,
    expires_at       BIGINT,
    withdrawn_at     BIGINT,
    recorded_by      TEXT,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX consent_customer ON consent (customer_id, granted_at);

CREATE TABLE unmask_request (
    id                TEXT    PRIMARY KEY,
    requester_id      TEXT    NOT NULL,
    requester_role    TEXT    NOT NULL,
    requester_team    TEXT,
    purpose           TEXT    NOT NULL,
    purpose_detail    TEXT    NOT NULL,
    legal_basis       TEXT    NOT NULL,
    jurisdiction      TEXT    NOT NULL,
    consent_ids       TEXT    NOT NULL,
    customer_ids      TEXT    NOT NULL,
    fields            TEXT    NOT NULL,
    mode              TEXT    NOT NULL,
    duration_minutes  BIGINT  NOT NULL,
    recipient         TEXT,
    recipient_name    TEXT,
    policy_change     TEXT,
    max_reveals       BIGINT,
    risk              TEXT    NOT NULL,
    checks            TEXT    NOT NULL,
    approvals_needed  BIGINT  NOT NULL,
    state             TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX unmask_request_requester ON unmask_request (requester_id, created_at);
CREATE INDEX unmask_request_state ON unmask_request (state, created_at);

CREATE TABLE risk_assessment (
    id          TEXT    PRIMARY KEY,
    request_id  TEXT    NOT NULL,
    level       TEXT    NOT NULL,
    score       BIGINT  NOT NULL,
    factors     TEXT    NOT NULL,
    purpose     TEXT    NOT NULL,
    necessity   TEXT    NOT NULL,
    impact      TEXT    NOT NULL,
    measures    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX risk_assessment_request ON risk_assessment (request_id, created_at);

CREATE TABLE unmask_decision (
    request_id   TEXT    NOT NULL,
    approver_id  TEXT    NOT NULL,
    decision     TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    decided_at   BIGINT  NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

CREATE TABLE unmask_grant (
    id            TEXT    PRIMARY KEY,
    request_id    TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL,
    customer_ids  TEXT    NOT NULL,
    fields        TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    max_reveals   BIGINT,
    reveals_used  BIGINT  NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    revoke_reason TEXT
);
CREATE INDEX unmask_grant_user ON unmask_grant (user_id, expires_at);
