-- The delete trigger of customer_product (0030) counted the pairs lost by joining `removed` to
-- `(SELECT ... FROM removed UNION ALL SELECT ... FROM customer_product)`. PostgreSQL cannot push that join's
-- condition into a UNION ALL one of whose branches is a transition table (a Named Tuplestore Scan has no
-- parameterized path, so the append gets none): it read the whole of customer_product (~1,800,000 rows at 1,000,000
-- orders) through a hash join, ~200 ms for every refund or cancellation that takes a product out of a customer's
-- purchases, and seconds for an erasure. The same pairs as three joins, (removed, removed), (removed, remaining) and
-- (remaining, removed): the two with customer_product are index lookups by customer_id (its primary key).
-- That UPDATE runs with EXECUTE, so that it is planned at each call for the actual size of `removed`: a statement
-- written out in PL/pgSQL keeps the plan made at its first call in the session, and a session whose first delete
-- was large (Store::rebuild_purchase_stats deletes every row) would keep hash joins over product_pair and
-- customer_product (1.3-2.8 s per refund measured). Planning it costs ~0.5 ms. The function returns at once when
-- nothing was deleted, and is otherwise that of 0030.
CREATE OR REPLACE FUNCTION veil_customer_product_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8531340982462866034);
    -- Every SYNC_UNBOUGHT fires this trigger, most of them (a paid order, a refund of products still bought on
    -- another order) deleting nothing; with `removed` empty every statement below is a no-op.
    IF NOT EXISTS (SELECT 1 FROM removed) THEN
        RETURN NULL;
    END IF;
    UPDATE product_buyers SET buyers = product_buyers.buyers - gone.buyers
    FROM (SELECT product_id, COUNT(*) AS buyers FROM removed GROUP BY product_id) AS gone
    WHERE product_buyers.product_id = gone.product_id;
    EXECUTE $sql$
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
    WHERE product_pair.product_id = lost.product_id AND product_pair.other_id = lost.other_id
    $sql$;
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
