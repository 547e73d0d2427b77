-- Saved segments: a named customer filter (owner, team, tag, industry; no personal data) that a user keeps to list
-- customers with and to scope unmask requests by. A request names the segment it was made from; the customers it
-- covers are resolved inside the requester's scope when it is made and stored with it, so approvers decide on a
-- fixed list.
CREATE TABLE segment (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    owner_id    TEXT    NOT NULL,
    filter      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (owner_id, name)
);
ALTER TABLE unmask_request ADD COLUMN segment_id TEXT;
-- Listing by industry walks this index newest first (owner and team have theirs since 0001); tags are a JSON array
-- and are matched row by row.
CREATE INDEX customer_industry ON customer (industry, id);
