-- Security alerts raised by the monitor (veil-app's monitor module) from the audit trail. Summaries and evidence
-- name users, rules, counts and audit sequence numbers, never customer data. `subject` is what the rule counts per
-- (a user id, a client address, or a hash of a login name tried) and `trigger_seq` the audit entry that tripped it:
-- one alert per rule, subject and triggering entry, so two monitors processing the same entries raise it once.
-- The monitor's cursor (last audit sequence processed) is the `monitor.cursor` row of `setting`.
CREATE TABLE security_alert (
    id               TEXT    PRIMARY KEY,
    rule             TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    user_id          TEXT,
    username         TEXT,
    source_ip        TEXT,
    subject          TEXT    NOT NULL,
    trigger_seq      BIGINT  NOT NULL,
    triggered_at     BIGINT  NOT NULL,
    summary          TEXT    NOT NULL,
    evidence         TEXT    NOT NULL,
    actions_taken    TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  BIGINT,
    webhook_delivered_at  BIGINT,
    webhook_attempts      INTEGER NOT NULL DEFAULT 0,
    email_delivered_at    BIGINT,
    email_attempts        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rule, subject, trigger_seq)
);
CREATE INDEX security_alert_rule_subject ON security_alert (rule, subject, triggered_at);
CREATE INDEX security_alert_created ON security_alert (created_at);
