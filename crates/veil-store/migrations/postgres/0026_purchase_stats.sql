-- Purchase statistics for recommendations, kept on write so that recommending for one customer reads a few index
-- ranges instead of self-joining every paid order line (seconds at 1,000,000 orders).
--
-- customer_product: what each customer has bought (a product on at least one paid order) and how many units. The
-- order writes keep it (veil-store's orders module re-derives one customer's rows after every order write that
-- involves a paid order). product_buyers and product_pair are functions of it, kept by the triggers below: the
-- distinct buyers of each product, and for every ordered pair of products the distinct customers who bought both.
-- Those two are derived data: backups leave them out (EXCLUDED_TABLES in the snapshot module) and a restore rebuilds
-- them, because loading customer_product fires the same triggers. Erasing a customer cascades to its
-- customer_product rows and so takes it out of the counts. A count may fall to zero and stay: readers skip those.
CREATE TABLE customer_product (
    customer_id  TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    product_id   TEXT    NOT NULL REFERENCES product (id),
    units        BIGINT  NOT NULL CHECK (units > 0),
    PRIMARY KEY (customer_id, product_id)
);

CREATE TABLE product_buyers (
    product_id  TEXT    PRIMARY KEY,
    buyers      BIGINT  NOT NULL CHECK (buyers >= 0)
);

CREATE TABLE product_pair (
    product_id  TEXT    NOT NULL,
    other_id    TEXT    NOT NULL,
    customers   BIGINT  NOT NULL CHECK (customers >= 0),
    PRIMARY KEY (product_id, other_id)
);

INSERT INTO customer_product (customer_id, product_id, units)
SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i JOIN sales_order o ON o.id = i.order_id
WHERE o.status = 'paid' GROUP BY i.customer_id, i.product_id;

INSERT INTO product_buyers (product_id, buyers)
SELECT product_id, COUNT(*) FROM customer_product GROUP BY product_id;

INSERT INTO product_pair (product_id, other_id, customers)
SELECT a.product_id, b.product_id, COUNT(*) FROM customer_product a
JOIN customer_product b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id
GROUP BY a.product_id, b.product_id;

-- Statement-level triggers over transition tables (as for customer_industry_count in 0020): one upsert per
-- product and pair per statement, so a restore's COPY of a million rows does not write a row version per row.
-- After an insert, the pairs gained are every ordered pair of a customer's products in which at least one side
-- is new: (new, any other) plus (old, new).
CREATE FUNCTION veil_customer_product_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_buyers (product_id, buyers)
    SELECT product_id, COUNT(*) FROM added GROUP BY product_id
    ON CONFLICT (product_id) DO UPDATE SET buyers = product_buyers.buyers + EXCLUDED.buyers;
    INSERT INTO product_pair (product_id, other_id, customers)
    SELECT product_id, other_id, COUNT(*) FROM (
        SELECT a.product_id, other.product_id AS other_id FROM added a
        JOIN customer_product other ON other.customer_id = a.customer_id AND other.product_id <> a.product_id
        UNION ALL
        SELECT other.product_id, a.product_id FROM added a
        JOIN customer_product other ON other.customer_id = a.customer_id AND other.product_id <> a.product_id
        WHERE NOT EXISTS (SELECT 1 FROM added a2
                          WHERE a2.customer_id = other.customer_id AND a2.product_id = other.product_id)
    ) AS gained
    GROUP BY product_id, other_id
    ON CONFLICT (product_id, other_id) DO UPDATE SET customers = product_pair.customers + EXCLUDED.customers;
    RETURN NULL;
END;
$$;

-- After a delete, the pairs lost are (removed, removed or remaining other) plus (remaining, removed).
CREATE FUNCTION veil_customer_product_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
    RETURN NULL;
END;
$$;

CREATE TRIGGER customer_product_insert AFTER INSERT ON customer_product
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_product_insert();
CREATE TRIGGER customer_product_delete AFTER DELETE ON customer_product
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION veil_customer_product_delete();
