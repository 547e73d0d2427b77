-- Customer feedback (数据分析与改进): satisfaction surveys and the scores and comments they collect.
--
-- A survey is an invitation to answer once, through a public link. Customers have no accounts: the link carries
-- a random token of which only the SHA-256 hash is stored (token_hash), so the table cannot be used to answer
-- anyone's survey. A CSAT survey belongs to one ticket (UNIQUE ticket_id: closing a ticket again never creates a
-- second one); an NPS survey has no ticket and belongs to the batch (campaign_id) it was sent with.
CREATE TABLE survey (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('csat', 'nps')),
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    ticket_id    TEXT    UNIQUE REFERENCES ticket (id) ON DELETE CASCADE,
    campaign_id  TEXT,
    token_hash   BLOB   NOT NULL UNIQUE,
    created_by   TEXT    REFERENCES app_user (id),
    expires_at   BIGINT  NOT NULL,
    answered_at  BIGINT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX survey_customer ON survey (customer_id);

-- One score with what the analysis groups by: the ticket's channel and assignee (agent) as they were when the
-- feedback came in, and the product when it is about an order item. The comment is masked like customer notes:
-- personal data replaced in place by its masked display, the original spans sealed under the customer's key.
-- survey_id is UNIQUE: a survey yields at most one feedback row.
CREATE TABLE feedback (
    id                  TEXT    PRIMARY KEY,
    customer_id         TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kind                TEXT    NOT NULL CHECK (kind IN ('csat', 'nps')),
    score               BIGINT  NOT NULL CHECK (score >= 0 AND score <= 10),
    comment_masked      TEXT    NOT NULL DEFAULT '',
    comment_spans_ct    BLOB,
    comment_span_index  TEXT    NOT NULL DEFAULT '[]',
    source              TEXT    NOT NULL,
    survey_id           TEXT    UNIQUE REFERENCES survey (id) ON DELETE CASCADE,
    ticket_id           TEXT    REFERENCES ticket (id) ON DELETE SET NULL,
    channel             TEXT,
    agent_id            TEXT    REFERENCES app_user (id),
    product_id          TEXT    REFERENCES product (id),
    recorded_by         TEXT    REFERENCES app_user (id),
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX feedback_created ON feedback (created_at);
CREATE INDEX feedback_customer ON feedback (customer_id, created_at);
