CREATE OR REPLACE FUNCTION veil_customer_product_delete()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8531340982462866034);
    UPDATE product_buyers SET buyers = product_buyers.buyers - gone.buyers
    FROM (SELECT product_id, COUNT(*) AS buyers FROM removed GROUP BY product_id) AS gone
    WHERE product_buyers.product_id = gone.product_id;
    UPDATE product_pair SET customers = product_pair.customers - lost.customers
    FROM (
        SELECT product_id, other_id, COUNT(*) AS customers FROM (
            SELECT r.product_id, other.product_id AS other_id FROM removed r
            JOIN (SELECT customer_id, product_id FROM removed
                  UNION ALL SELECT customer_id, product_id FROM customer_product) AS other
              ON other.customer_id = r.customer_id AND other.product_id <> r.product_id
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
$function$

;
