-- Leads, deals with per-industry pipelines, and follow-up tasks (issue 9).
--
-- A lead is a customer record in the 'lead' lifecycle stage: it gets the customer's validation, encryption,
-- masking, blind-index de-duplication, visibility and audit unchanged. Converting it sets the stage to
-- 'customer' once (a guarded UPDATE: a second conversion changes nothing and is refused as a conflict).
-- Every customer written before this migration, or through the customer routes, is a 'customer'.
ALTER TABLE customer ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'customer';
ALTER TABLE customer ADD COLUMN converted_at BIGINT;
CREATE INDEX customer_lifecycle ON customer (lifecycle, id);

-- A deal (opportunity) of a customer. Amounts are integers in minor units. The pipeline is one of the templates
-- in code (veil_app::deals::PIPELINES) and the stage one of its stages. title and lost_reason are free text,
-- stored masked (personal data typed into them is replaced by its masked display; the originals are not kept).
-- version is the optimistic-concurrency counter: every change is 'UPDATE … WHERE version = expected'.
CREATE TABLE deal (
    id              TEXT    PRIMARY KEY,
    customer_id     TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    title           TEXT    NOT NULL,
    amount_minor    BIGINT  NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT    NOT NULL,
    expected_close  TEXT,
    owner_id        TEXT    REFERENCES app_user (id),
    pipeline        TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    lost_reason     TEXT,
    version         BIGINT  NOT NULL,
    created_by      TEXT    REFERENCES app_user (id),
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    closed_at       BIGINT
);
CREATE INDEX deal_customer ON deal (customer_id, id);
CREATE INDEX deal_board ON deal (pipeline, status, stage);

-- Every stage or status change of a deal, with who made it and when.
CREATE TABLE deal_stage_change (
    id           TEXT    PRIMARY KEY,
    deal_id      TEXT    NOT NULL REFERENCES deal (id) ON DELETE CASCADE,
    from_stage   TEXT,
    to_stage     TEXT    NOT NULL,
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    actor_id     TEXT    REFERENCES app_user (id),
    changed_at   BIGINT  NOT NULL
);
CREATE INDEX deal_stage_change_deal ON deal_stage_change (deal_id, changed_at, id);

-- A follow-up task: due time, assignee, optionally a customer and/or a deal. title is stored masked.
CREATE TABLE follow_up_task (
    id           TEXT    PRIMARY KEY,
    title        TEXT    NOT NULL,
    due_at       BIGINT  NOT NULL,
    assignee_id  TEXT    NOT NULL REFERENCES app_user (id),
    customer_id  TEXT    REFERENCES customer (id) ON DELETE CASCADE,
    deal_id      TEXT    REFERENCES deal (id) ON DELETE CASCADE,
    done_at      BIGINT,
    done_by      TEXT    REFERENCES app_user (id),
    created_by   TEXT    REFERENCES app_user (id),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX follow_up_task_assignee ON follow_up_task (assignee_id, due_at, id);
CREATE INDEX follow_up_task_customer ON follow_up_task (customer_id);
