-- The admin dashboard's customer counts per industry, kept exact by triggers on `customer`, so that reading them
-- costs one small table instead of a GROUP BY over every customer (323 ms at 1,000,000 customers). Derived data:
-- backups leave the table out (EXCLUDED_TABLES in veil-store's snapshot module) and a restore rebuilds it, because
-- loading the customer rows fires these same triggers. `industry_key` tells "no industry" ('-') from every given
-- industry ('=' and the name), so that NULL, which a primary key cannot hold, is counted exactly too. A row whose
-- count falls to zero is deleted. No created_at/updated_at: the table is a function of `customer`, not a record.
-- Writers of customers with the same industry queue on its row until they commit; every customer write already
-- queues on the audit head row in the same transaction, so this adds no new serialisation.
CREATE TABLE customer_industry_count (
    industry_key  TEXT    PRIMARY KEY,
    industry      TEXT,
    customers     BIGINT  NOT NULL CHECK (customers >= 0)
);

INSERT INTO customer_industry_count (industry_key, industry, customers)
SELECT COALESCE('=' || industry, '-'), industry, COUNT(*) FROM customer GROUP BY industry;

-- Statement-level triggers over transition tables: one update per industry per statement, not per row. A row
-- trigger would update the same count row once per inserted customer, and inside one transaction (a restore, an
-- import) PostgreSQL keeps every one of those row versions: a million-row COPY took minutes instead of seconds.
-- An UPDATE trigger cannot name a column list together with transition tables, so it fires on every UPDATE
-- statement and applies only the industries whose counts changed.
CREATE FUNCTION veil_customer_industry_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_industry_count (industry_key, industry, customers)
    SELECT COALESCE('=' || industry, '-'), industry, COUNT(*) FROM new_rows GROUP BY industry
    ON CONFLICT (industry_key) DO UPDATE
        SET customers = customer_industry_count.customers + EXCLUDED.customers;
    RETURN NULL;
END;
$$;
CREATE FUNCTION veil_customer_industry_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customer_industry_count AS counts SET customers = counts.customers - gone.customers
    FROM (SELECT COALESCE('=' || industry, '-') AS industry_key, COUNT(*) AS customers
          FROM old_rows GROUP BY industry) AS gone
    WHERE counts.industry_key = gone.industry_key;
    DELETE FROM customer_industry_count WHERE customers = 0;
    RETURN NULL;
END;
$$;
CREATE FUNCTION veil_customer_industry_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Gains and losses touch different industries, so the two writes of one statement never meet on a row.
    WITH delta AS (
        SELECT industry_key, industry, SUM(change) AS customers FROM (
            SELECT COALESCE('=' || industry, '-') AS industry_key, industry, 1 AS change FROM new_rows
            UNION ALL
            SELECT COALESCE('=' || industry, '-'), industry, -1 FROM old_rows
        ) AS changes
        GROUP BY industry_key, industry
        HAVING SUM(change) <> 0
    ), gained AS (
        INSERT INTO customer_industry_count (industry_key, industry, customers)
        SELECT industry_key, industry, customers FROM delta WHERE customers > 0
        ON CONFLICT (industry_key) DO UPDATE
            SET customers = customer_industry_count.customers + EXCLUDED.customers
        RETURNING 1
    )
    UPDATE customer_industry_count AS counts SET customers = counts.customers + delta.customers
    FROM delta
    WHERE delta.customers < 0 AND counts.industry_key = delta.industry_key;
    DELETE FROM customer_industry_count WHERE customers = 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER customer_industry_count_insert AFTER INSERT ON customer
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_industry_count_insert();
CREATE TRIGGER customer_industry_count_delete AFTER DELETE ON customer
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_industry_count_delete();
CREATE TRIGGER customer_industry_count_update AFTER UPDATE ON customer
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_industry_count_update();

-- TRUNCATE fires no row trigger: empty the counts with the customers.
CREATE FUNCTION veil_customer_industry_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_industry_count;
    RETURN NULL;
END;
$$;
CREATE TRIGGER customer_industry_count_truncate AFTER TRUNCATE ON customer
    FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_industry_count_truncate();

-- A salesperson's or a team's counts stay a GROUP BY over their own rows, read from these indexes alone (the
-- customer rows, wide with ciphertext, are not visited).
CREATE INDEX customer_owner_industry ON customer (owner_id, industry);
CREATE INDEX customer_team_industry ON customer (team, industry);

-- Reveals per day for the dashboard: one bounded range over successful reveals of the last days, counted from the
-- index alone, instead of paging through the audit log.
CREATE INDEX audit_log_action_outcome_at ON audit_log (action, outcome, at);
