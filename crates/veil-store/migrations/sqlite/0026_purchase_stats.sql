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

-- Row triggers: a new row pairs with every other product of the same customer, in both directions (rows inserted
-- earlier in the same statement are already visible, so each ordered pair is counted once).
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
END;

CREATE TRIGGER customer_product_delete AFTER DELETE ON customer_product BEGIN
    UPDATE product_buyers SET buyers = buyers - 1 WHERE product_id = OLD.product_id;
    UPDATE product_pair SET customers = customers - 1
    WHERE product_id = OLD.product_id
      AND other_id IN (SELECT product_id FROM customer_product WHERE customer_id = OLD.customer_id);
    UPDATE product_pair SET customers = customers - 1
    WHERE product_id IN (SELECT product_id FROM customer_product WHERE customer_id = OLD.customer_id)
      AND other_id = OLD.product_id;
END;
