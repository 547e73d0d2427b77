-- The token vault (by_vault reversibility): what a `tokenize` token or a kept `replace_fake` value stands for.
-- The value is sealed with AES-256-GCM under the keyring's `token_vault` key, bound by associated data to its
-- scope and surrogate; deterministic entries carry a keyed index of scope and value (never the value) so the same
-- value gets the same token. Entries made for a customer name it, and erasing the customer deletes them.
CREATE TABLE token_vault (
    surrogate_kind  TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    context         TEXT    NOT NULL,
    surrogate       TEXT    NOT NULL,
    value_ct        BLOB   NOT NULL,
    value_index     BLOB,
    customer_id     TEXT,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (surrogate_kind, kind, context, surrogate)
);
CREATE UNIQUE INDEX token_vault_value ON token_vault (surrogate_kind, kind, context, value_index);
CREATE INDEX token_vault_customer ON token_vault (customer_id);
