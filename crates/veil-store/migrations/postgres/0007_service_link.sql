-- Service staff see the customers linked to them: a ticket assigned to a service user about a customer creates
-- the link (tickets come with the CRM issue); until then an admin or manager links them explicitly.
CREATE TABLE customer_service_link (
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL REFERENCES app_user (id),
    reason       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, user_id)
);
CREATE INDEX customer_service_link_user ON customer_service_link (user_id, customer_id);
