-- Foundation schema: keys, users, sessions, customers. Times are Unix milliseconds (BIGINT) and ids are
-- text UUIDv7 so that the SQLite and PostgreSQL schemas stay column-for-column identical.

CREATE TABLE master_key_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    source      TEXT    NOT NULL,          -- 'file' or 'passphrase'
    salt        BLOB,                      -- Argon2id salt when source = 'passphrase'
    check_blob  BLOB    NOT NULL,          -- a constant sealed under the master key: proves the key matches
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE keyring (
    purpose     TEXT    NOT NULL,          -- 'kek' or 'blind_index'
    version     BIGINT  NOT NULL,
    wrapped     BLOB,                      -- wrapped by the master key; NULL once retired
    state       TEXT    NOT NULL,          -- 'active', 'previous', 'retired'
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (purpose, version)
);

CREATE TABLE app_user (
    id             TEXT    PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    team           TEXT,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE TABLE auth_token (
    token_hash  BLOB    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX auth_token_user ON auth_token (user_id);

CREATE TABLE customer (
    id                 TEXT    PRIMARY KEY,
    dek_version        BIGINT  NOT NULL,
    name_ct            BLOB    NOT NULL,
    name_masked        TEXT    NOT NULL,
    gender             TEXT,
    birth_date_ct      BLOB,
    birth_date_masked  TEXT,
    phone_ct           BLOB,
    phone_masked       TEXT,
    phone_bidx         BLOB,
    id_number_ct       BLOB,
    id_number_masked   TEXT,
    id_number_bidx     BLOB,
    email_ct           BLOB,
    email_masked       TEXT,
    email_bidx         BLOB,
    address_ct         BLOB,
    address_masked     TEXT,
    bank_card_ct       BLOB,
    bank_card_masked   TEXT,
    bank_card_bidx     BLOB,
    tags               TEXT    NOT NULL DEFAULT '[]',
    owner_id           TEXT    REFERENCES app_user (id),
    team               TEXT,
    source             TEXT,
    industry           TEXT,
    attributes         TEXT    NOT NULL DEFAULT '{}',
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX customer_phone_bidx ON customer (phone_bidx);
CREATE INDEX customer_id_number_bidx ON customer (id_number_bidx);
CREATE INDEX customer_email_bidx ON customer (email_bidx);
CREATE INDEX customer_bank_card_bidx ON customer (bank_card_bidx);
CREATE INDEX customer_owner ON customer (owner_id, id);
CREATE INDEX customer_team ON customer (team, id);

-- Each customer's data key, wrapped by a versioned key-encryption key. Deleting the row crypto-shreds the customer.
CREATE TABLE customer_key (
    customer_id  TEXT    PRIMARY KEY REFERENCES customer (id) ON DELETE CASCADE,
    dek_version  BIGINT  NOT NULL,
    kek_version  BIGINT  NOT NULL,
    wrapped      BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX customer_key_kek ON customer_key (kek_version);

-- Which customers were erased (crypto-shredded), so that a restore can shred them again.
CREATE TABLE erasure (
    customer_id  TEXT    PRIMARY KEY,
    erased_by    TEXT,
    erased_at    BIGINT  NOT NULL
);

-- Small named facts about this database (e.g. that `veil demo` created it).
CREATE TABLE setting (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);
