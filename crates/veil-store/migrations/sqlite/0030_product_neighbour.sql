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
-- WITHOUT ROWID: a list is one contiguous range of the primary key, a page or two.
CREATE TABLE product_neighbour (
    product_id    TEXT    NOT NULL,
    rank          BIGINT  NOT NULL CHECK (rank > 0),
    neighbour_id  TEXT    NOT NULL,
    customers     BIGINT  NOT NULL,
    PRIMARY KEY (product_id, rank)
) WITHOUT ROWID;

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
SELECT product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM product_buyers
WHERE buyers > 0;

-- The triggers of 0026, with the marking added after the counts are updated.
DROP TRIGGER customer_product_insert;
DROP TRIGGER customer_product_delete;

-- A new purchase (customer u, product p) changes the pair counts of p with each of u's products, so p's list and
-- theirs; and p's buyer count, which lowers p's key in every list, so a list p is on may lose it. A list p is not on
-- cannot change: p only falls further below it.
CREATE TRIGGER customer_product_insert AFTER INSERT ON customer_product BEGIN
    INSERT INTO product_buyers (product_id, buyers) VALUES (NEW.product_id, 1)
    ON CONFLICT (product_id) DO UPDATE SET buyers = buyers + 1;
    INSERT INTO product_pair (product_id, other_id, customers)
    SELECT NEW.product_id, other.product_id, 1 FROM customer_product other
    WHERE other.customer_id = NEW.customer_id AND other.product_id <> NEW.product_id
    ON CONFLICT (product_id, other_id) DO UPDATE SET customers = customers + 1;
    INSERT INTO product_pair (product_id, other_id, customers)
    SELECT other.product_id, NEW.product_id, 1 FROM customer_product other
    WHERE other.customer_id = NEW.customer_id AND other.product_id <> NEW.product_id
    ON CONFLICT (product_id, other_id) DO UPDATE SET customers = customers + 1;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT mine.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM customer_product mine
    WHERE mine.customer_id = NEW.customer_id
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT listed.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM product_neighbour listed WHERE listed.neighbour_id = NEW.product_id
    ON CONFLICT (product_id) DO NOTHING;
END;

-- A purchase gone (a refund, an erasure) changes the lists of p and of u's other products as above; p's buyer
-- count falls, which raises p's key everywhere: a list p is on may reorder (marked here), and a truncated list p
-- is not on takes p in if its key now reaches the cut (recorded as a rise, tested by the next refresh).
CREATE TRIGGER customer_product_delete AFTER DELETE ON customer_product BEGIN
    UPDATE product_buyers SET buyers = buyers - 1 WHERE product_id = OLD.product_id;
    UPDATE product_pair SET customers = customers - 1
    WHERE product_id = OLD.product_id
      AND other_id IN (SELECT product_id FROM customer_product WHERE customer_id = OLD.customer_id);
    UPDATE product_pair SET customers = customers - 1
    WHERE product_id IN (SELECT product_id FROM customer_product WHERE customer_id = OLD.customer_id)
      AND other_id = OLD.product_id;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    VALUES (OLD.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT mine.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM customer_product mine
    WHERE mine.customer_id = OLD.customer_id
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_neighbour_stale (product_id, marked_at)
    SELECT listed.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM product_neighbour listed WHERE listed.neighbour_id = OLD.product_id
    ON CONFLICT (product_id) DO NOTHING;
    INSERT INTO product_neighbour_rise (product_id, marked_at)
    VALUES (OLD.product_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (product_id) DO NOTHING;
END;
