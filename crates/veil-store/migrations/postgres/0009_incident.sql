-- Security incidents. While one is open Veil is in lock-down: reveals and exports are refused, and only admins
-- and DPOs keep their sessions. The reason and closing note are stored masked (no personal data).
CREATE TABLE incident (
    id          TEXT    PRIMARY KEY,
    reason      TEXT    NOT NULL,
    opened_by   TEXT,
    opened_at   BIGINT  NOT NULL,
    closed_by   TEXT,
    closed_at   BIGINT,
    close_note  TEXT
);
-- At most one open incident at a time.
CREATE UNIQUE INDEX incident_one_open ON incident ((closed_at IS NULL)) WHERE closed_at IS NULL;
