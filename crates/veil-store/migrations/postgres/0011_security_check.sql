-- Results of `veil doctor` and of the server's scheduled security self-check, newest kept for display and
-- history. `results` is a JSON array of {name, status, detail}; nothing personal.
CREATE TABLE security_check_run (
    id       TEXT    PRIMARY KEY,
    at       BIGINT  NOT NULL,
    ok       BOOLEAN NOT NULL,
    source   TEXT    NOT NULL,
    results  TEXT    NOT NULL
);
CREATE INDEX security_check_run_at ON security_check_run (at);
