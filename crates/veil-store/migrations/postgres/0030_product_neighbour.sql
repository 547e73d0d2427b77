-- Neighbour lists for recommendations: for each product, the N products most similar to it by the cosine of their
-- buyer sets (N = veil_store::NEIGHBOUR_DEPTH, 50), so that recommending for a customer reads N rows per product
-- they bought instead of summing every pair row of those products (~20,000 rows at 1,000,000 orders).
--
-- product_neighbour: the list, `rank` 1 the most similar, with the pair count it was ranked by (so that a request
-- reads no product_pair row). For a fixed product x the cosine order of its partners j is the order of
-- customers(x, j)² / buyers(j) (buyers(x) is common to all), then neighbour id; only pairs with a positive count
-- are listed. veil-store's orders module computes the lists (Store::refresh_product_neighbours,
-- Store::rebuild_product_neighbours).
--
-- product_neighbour_cut: for a list that was truncated (x has more than N partners), the counts of its last member
-- when it was computed: the bar a product outside the list has to reach to get in.
--
-- product_neighbour_stale: the lists to recompute, with when they were first marked (unix ms). The triggers below
-- mark, on every change of customer_product, the lists that the change can alter (see docs/crm.md, "Neighbour
-- lists"); a refresh recomputes and unmarks them.
--
-- product_neighbour_rise: products whose buyer count fell (a purchase gone), which may now pass the cut of lists
-- they are not on. Testing that reads every pair row of the product (~1,500 at 1,000,000 orders), so the triggers
-- only record the product, and a refresh tests it and marks the lists it reaches before recomputing any.
--
-- A list that is not marked, while no recorded rise reaches it, equals the one computed from the current counts, so
-- its members' counts and its cut are current too; a marked one keeps those of its last computation until it is
-- recomputed. All three tables are derived data:
-- backups leave them out and a restore marks every bought product, as loading customer_product fires these
-- triggers.
--
-- Concurrency: the triggers hold the advisory lock 8531340982462866034 ('veil-nbr') shared until their transaction
-- ends, and a refresh takes it exclusively (Store::refresh_product_neighbours). A refresh therefore never runs
-- while a purchase change is counted but not committed: it reads every committed count, and every mark made after
-- it sees the lists it wrote.
CREATE TABLE product_neighbour (
    product_id    TEXT    NOT NULL,
    rank          BIGINT  NOT NULL CHECK (rank > 0),
    neighbour_id  TEXT    NOT NULL,
    customers     BIGINT  NOT NULL,
    PRIMARY KEY (product_id, rank)
);

-- The lists a product is on (its buyer count moves its place in all of them).
CREATE INDEX product_neighbour_reverse ON product_neighbour (neighbour_id);

CREATE TABLE product_neighbour_cut (
    product_id  TEXT    PRIMARY KEY,
    customers   BIGINT  NOT NULL,
    buyers      BIGINT  NOT NULL
);

CREATE TABLE product_neighbour_stale (
    product_id  TEXT    PRIMARY KEY,
    marked_at   BIGINT  NOT NULL
);

CREATE INDEX product_neighbour_stale_age ON product_neighbour_stale (marked_at, product_id);

CREATE TABLE product_neighbour_rise (
    product_id  TEXT    PRIMARY KEY,
    marked_at   BIGINT  NOT NULL
);

CREATE INDEX product_neighbour_rise_age ON product_neighbour_rise (marked_at, product_id);

-- Existing purchases: every bought product's list is to be computed (by the refresh job of `veil serve`).
INSERT INTO product_neighbour_stale (product_id, marked_at)
SELECT product_id, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT FROM product_buyers WHERE buyers > 0;

-- The functions of 0026, with the lock and the marking added. After an insert: the lists of the added products and
-- of their customers' other products (their pair counts changed), and the lists an added product is on (its buyer
-- count rose, so its key fell and it may drop off). A list it is not on cannot change.
CREATE OR REPLACE FUNCTION veil_customer_product_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8531340982462866034);
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
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT touched.product_id, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT FROM (
        SELECT mine.product_id FROM customer_product mine
        WHERE mine.customer_id IN (SELECT customer_id FROM added)
        UNION
        SELECT listed.product_id FROM product_neighbour listed
        WHERE listed.neighbour_id IN (SELECT product_id FROM added)
    ) AS touched
    ORDER BY touched.product_id
    ON CONFLICT (product_id) DO NOTHING;
    RETURN NULL;
END;
$$;

-- After a delete: the lists of the removed products and of their customers' remaining products, and the lists a
-- removed product is on (its key rose: they may reorder); the removed products are recorded as rises, for the next
-- refresh to test against the cuts of the truncated lists they are not on (they may get in).
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
$$;
