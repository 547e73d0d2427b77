-- Free-text notes on a customer. Personal data found in the text is cut out on write: the body is stored with
-- masked displays in place, and the original spans are sealed under the customer's data key (so erasing the
-- customer erases them too). span_index lists kind and position of each span in the masked body.
CREATE TABLE customer_note (
    id           TEXT    PRIMARY KEY,
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    author_id    TEXT    REFERENCES app_user (id),
    body_masked  TEXT    NOT NULL,
    spans_ct     BYTEA,
    span_index   TEXT    NOT NULL DEFAULT '[]',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX customer_note_customer ON customer_note (customer_id, id);
