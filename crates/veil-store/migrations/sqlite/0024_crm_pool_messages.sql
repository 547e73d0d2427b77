-- The customer pool (公海) and customer messages (issue 9).
--
-- A customer without an owner (customer.owner_id IS NULL) is in the pool: every salesperson may browse it, with
-- every personal field but the masked name fully masked, and claim a customer from it. Claims, releases and
-- automatic returns are kept here, newest last, with who, why (masked) and the owner and team before and after.
CREATE TABLE customer_pool_event (
    id           TEXT    PRIMARY KEY,
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,              -- 'claim', 'release' or 'return'
    from_owner   TEXT,
    from_team    TEXT,
    to_owner     TEXT,
    to_team      TEXT,
    actor_id     TEXT,                          -- NULL for the automatic return
    reason       TEXT    NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX customer_pool_event_customer ON customer_pool_event (customer_id, at);

-- Which customers a user holds because they claimed them from the pool (the per-person claim limit counts the
-- rows whose customer is still theirs). Deleted when the customer goes back to the pool.
CREATE TABLE pool_holding (
    customer_id  TEXT    PRIMARY KEY REFERENCES customer (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL,
    claimed_at   BIGINT  NOT NULL
);
CREATE INDEX pool_holding_user ON pool_holding (user_id);

-- One row per claimant, written first by every claim: a row lock on PostgreSQL (the write lock on SQLite) that
-- serialises one person's claims, so that two at once cannot both pass the limit.
CREATE TABLE pool_claimant (
    user_id        TEXT    PRIMARY KEY,
    last_claim_at  BIGINT  NOT NULL
);

-- The automatic return looks for follow-ups by the owner since a cut-off: by author and time on each source.
CREATE INDEX customer_note_customer_at ON customer_note (customer_id, created_at);
CREATE INDEX interaction_customer_created ON interaction (customer_id, created_at);

-- Message templates with placeholders ({{customer.surname}}, {{points}}, …), per channel and language. Purpose
-- 'care' or 'marketing' decides which consent a send needs.
CREATE TABLE message_template (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    channel     TEXT    NOT NULL,               -- 'email' or 'sms'
    language    TEXT    NOT NULL,               -- 'zh' or 'en'
    purpose     TEXT    NOT NULL,               -- 'care' or 'marketing'
    subject     TEXT,
    body        TEXT    NOT NULL,
    created_by  TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- Every message sent to a customer: the recipient only masked, the status and an error without personal data.
-- The rendered text is not kept.
CREATE TABLE customer_message (
    id                TEXT    PRIMARY KEY,
    customer_id       TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    template_id       TEXT,
    template_name     TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    purpose           TEXT    NOT NULL,
    recipient_masked  TEXT    NOT NULL,
    status            TEXT    NOT NULL,         -- 'sending', 'sent' or 'failed'
    error             TEXT,
    sent_by           TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX customer_message_customer ON customer_message (customer_id, created_at);
