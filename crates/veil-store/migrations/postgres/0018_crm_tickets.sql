-- Interactions with a customer: calls, visits, property viewings (看房), test drives, consultations, emails and
-- messages. Like customer notes, the free-text note is stored with personal data masked in place; the original
-- spans are sealed under the customer's data key (erasing the customer erases them) and note_span_index says
-- where each masked span sits. The outcome is short free text, masked the same way (its originals are dropped).
CREATE TABLE interaction (
    id                TEXT    PRIMARY KEY,
    customer_id       TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kind              TEXT    NOT NULL,
    occurred_at       BIGINT  NOT NULL,
    duration_minutes  BIGINT,
    outcome           TEXT,
    note_masked       TEXT    NOT NULL DEFAULT '',
    note_spans_ct     BYTEA,
    note_span_index   TEXT    NOT NULL DEFAULT '[]',
    author_id         TEXT    REFERENCES app_user (id),
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX interaction_customer ON interaction (customer_id, occurred_at, id);

-- Tickets (consultations and complaints) about a customer. Subject and description are masked like notes, with
-- their original spans sealed under the customer's key. The SLA due times are fixed when the ticket is created
-- (from the priority's targets) and recomputed when the priority changes; first_responded_at and resolved_at
-- stop the two timers.
CREATE TABLE ticket (
    id                      TEXT    PRIMARY KEY,
    customer_id             TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    channel                 TEXT    NOT NULL,
    category                TEXT    NOT NULL,
    priority                TEXT    NOT NULL,
    status                  TEXT    NOT NULL,
    subject_masked          TEXT    NOT NULL,
    subject_spans_ct        BYTEA,
    subject_span_index      TEXT    NOT NULL DEFAULT '[]',
    description_masked      TEXT    NOT NULL DEFAULT '',
    description_spans_ct    BYTEA,
    description_span_index  TEXT    NOT NULL DEFAULT '[]',
    assignee_id             TEXT    REFERENCES app_user (id),
    assigned_by             TEXT,
    created_by              TEXT    REFERENCES app_user (id),
    first_response_due_at   BIGINT  NOT NULL,
    resolution_due_at       BIGINT  NOT NULL,
    first_responded_at      BIGINT,
    resolved_at             BIGINT,
    closed_at               BIGINT,
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL
);
CREATE INDEX ticket_customer ON ticket (customer_id, created_at, id);
CREATE INDEX ticket_assignee ON ticket (assignee_id, status);
CREATE INDEX ticket_open_resolution ON ticket (resolved_at, resolution_due_at);

-- Every status change of a ticket, with who made it.
CREATE TABLE ticket_status_change (
    id           TEXT    PRIMARY KEY,
    ticket_id    TEXT    NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    actor_id     TEXT    REFERENCES app_user (id),
    created_at   BIGINT  NOT NULL
);
CREATE INDEX ticket_status_change_ticket ON ticket_status_change (ticket_id, id);

-- Comments by staff on a ticket, masked and sealed like notes. The first one stops the first-response timer.
CREATE TABLE ticket_comment (
    id           TEXT    PRIMARY KEY,
    ticket_id    TEXT    NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
    author_id    TEXT    REFERENCES app_user (id),
    body_masked  TEXT    NOT NULL,
    spans_ct     BYTEA,
    span_index   TEXT    NOT NULL DEFAULT '[]',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX ticket_comment_ticket ON ticket_comment (ticket_id, id);

-- One escalation per ticket and timer ('first_response' or 'resolution'): the primary key is what makes the
-- breach job safe to run on several servers at once. escalated_to is the manager; NULL means the admins.
CREATE TABLE ticket_escalation (
    ticket_id     TEXT    NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
    timer         TEXT    NOT NULL,
    escalated_to  TEXT    REFERENCES app_user (id),
    assignee_id   TEXT,
    due_at        BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (ticket_id, timer)
);

-- The round-robin position per team, advanced with one UPDATE … RETURNING so that restarts keep the rotation
-- and two servers never hand out the same turn.
CREATE TABLE ticket_assignment_cursor (
    team        TEXT    PRIMARY KEY,
    position    BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- What a user is skilled in (ticket categories, e.g. 'billing'), for assignment by skill.
CREATE TABLE user_skill (
    user_id     TEXT    NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    skill       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, skill)
);
CREATE INDEX user_skill_skill ON user_skill (skill, user_id);
