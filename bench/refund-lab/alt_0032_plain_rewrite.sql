-- Alternative to 0032_customer_product_delete_pairs.sql, kept for comparison: the same rewrite of the pair UPDATE
-- written out in PL/pgSQL (no EXECUTE, no early return). Fast while the session's first delete was small; a session
-- whose first delete was large keeps that plan (see plancache_check.sql).
-- The delete trigger of customer_product (0030) counted the pairs lost by joining `removed` to
-- `(SELECT ... FROM removed UNION ALL SELECT ... FROM customer_product)`. PostgreSQL cannot push a join condition
-- into a UNION ALL one of whose branches is a transition table (a Named Tuplestore Scan has no parameterized path,
-- so the append has none either): it read the whole of customer_product (a sequential scan of ~1,800,000 rows at
-- 1,000,000 orders, ~200 ms) and hashed it, for every refund or cancellation that takes a product out of a
-- customer's purchases. The same pairs, as three joins: (removed, removed), (removed, remaining) and
-- (remaining, removed); both joins with customer_product are index lookups by customer_id (its primary key).
-- The function is otherwise that of 0030.
CREATE OR REPLACE FUNCTION veil_customer_product_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8531340982462866034);
    UPDATE product_buyers SET buyers = product_buyers.buyers - gone.buyers
    FROM (SELECT product_id, COUNT(*) AS buyers FROM removed GROUP BY product_id) AS gone
    WHERE product_buyers.product_id = gone.product_id;
    UPDATE product_pair SET customers = product_pair.customers - lost.customers
    FROM (
        SELECT product_id, other_id, COUNT(*) AS customers FROM (
            SELECT r.product_id, other.product_id AS other_id FROM removed r
            JOIN removed other ON other.customer_id = r.customer_id AND other.product_id <> r.product_id
            UNION ALL
            SELECT r.product_id, other.product_id FROM removed r
            JOIN customer_product other ON other.customer_id = r.customer_id AND other.product_id <> r.product_id
            UNION ALL
            SELECT other.product_id, r.product_id FROM removed r
            JOIN customer_product other ON other.customer_id = r.customer_id AND other.product_id <> r.product_id
        ) AS pairs
        GROUP BY product_id, other_id
    ) AS lost
    WHERE product_pair.product_id = lost.product_id AND product_pair.other_id = lost.other_id;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT touched.product_id, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT FROM (
        SELECT r.product_id FROM removed r
        UNION
        SELECT mine.product_id FROM customer_product mine
        WHERE mine.customer_id IN (SELECT customer_id FROM removed)
        UNION
        SELECT listed.product_id FROM product_neighbour listed
        WHERE listed.neighbour_id IN (SELECT product_id FROM removed)
    ) AS touched
    ORDER BY touched.product_id
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_neighbour_rise (product_id, marked_at)
    SELECT DISTINCT r.product_id, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT FROM removed r
    ORDER BY r.product_id
    ON CONFLICT (product_id) DO NOTHING;
    RETURN NULL;
END;
$$;
