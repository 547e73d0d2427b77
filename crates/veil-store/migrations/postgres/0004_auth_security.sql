-- Staff authentication hardening: TOTP second factor, recovery codes, step-up time on tokens, and failed-login
-- counters for lock-outs. Times are Unix milliseconds (BIGINT), ids are text, as in 0001.

-- One TOTP enrolment per user. The secret is sealed (AES-256-GCM) under the keyring's `mfa` key, bound to the
-- user id; it is never stored in clear. `confirmed_at` is NULL while the enrolment waits for its first code.
CREATE TABLE user_mfa (
    user_id       TEXT    PRIMARY KEY REFERENCES app_user (id) ON DELETE CASCADE,
    secret_ct     BYTEA   NOT NULL,
    key_version   BIGINT  NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,                  -- last accepted TOTP time step: a code is accepted once only
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- One-time recovery codes, stored as keyed hashes (HMAC under the keyring's `mfa` key), shown once.
CREATE TABLE recovery_code (
    user_id     TEXT    NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    code_hash   BYTEA   NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Failed logins per account and per client address, for exponential back-off. `subject` is a keyed hash of the
-- username or the address, so the table holds neither; `revision` makes updates compare-and-swap, so several
-- servers sharing the database count every failure.
CREATE TABLE login_failure (
    scope            TEXT    NOT NULL,     -- 'account' or 'address'
    subject          BYTEA   NOT NULL,
    failures         BIGINT  NOT NULL,     -- failures in the current window
    window_start     BIGINT  NOT NULL,
    lockouts         BIGINT  NOT NULL,     -- lock-outs so far: the next one lasts twice as long
    locked_until     BIGINT,
    last_failure_at  BIGINT  NOT NULL,
    revision         BIGINT  NOT NULL,
    PRIMARY KEY (scope, subject)
);
CREATE INDEX login_failure_last ON login_failure (last_failure_at);

-- When the token's holder last proved a second factor (login with TOTP, or a step-up).
ALTER TABLE auth_token ADD COLUMN mfa_verified_at BIGINT;
