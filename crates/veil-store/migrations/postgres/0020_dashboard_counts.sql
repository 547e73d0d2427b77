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

CREATE FUNCTION veil_customer_industry_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE customer_industry_count SET customers = customers - 1
        WHERE industry_key = COALESCE('=' || OLD.industry, '-');
        DELETE FROM customer_industry_count
        WHERE industry_key = COALESCE('=' || OLD.industry, '-') AND customers = 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO customer_industry_count (industry_key, industry, customers)
        VALUES (COALESCE('=' || NEW.industry, '-'), NEW.industry, 1)
        ON CONFLICT (industry_key) DO UPDATE SET customers = customer_industry_count.customers + 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER customer_industry_count_insert_delete AFTER INSERT OR DELETE ON customer
    FOR EACH ROW EXECUTE FUNCTION veil_customer_industry_count();
CREATE TRIGGER customer_industry_count_update AFTER UPDATE OF industry ON customer
    FOR EACH ROW WHEN (OLD.industry IS DISTINCT FROM NEW.industry)
    EXECUTE FUNCTION veil_customer_industry_count();

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
