-- Teams form a hierarchy: a manager sees the customers of their team and every team below it. A team named on a
-- user or customer without a row here is a team with no sub-teams.
CREATE TABLE team (
    name        TEXT    PRIMARY KEY,
    parent      TEXT    REFERENCES team (name),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- Every change of a customer's owner or team, with who did it and why (when a salesperson leaves, say).
CREATE TABLE ownership_transfer (
    customer_id  TEXT    NOT NULL,
    from_owner   TEXT,
    to_owner     TEXT,
    from_team    TEXT,
    to_team      TEXT,
    actor_id     TEXT,
    reason       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, created_at)
);
