-- Synthetic data of recommend-bench's shape (crates/veil-bench/src/bin/recommend-bench.rs):
-- 200,000 customers (each prefers two of 40 categories), 2,000 products (50 per category, popularity skewed by the
-- square of a uniform draw), 1,000,000 paid orders of 1-3 items (70 % first category), quantity 1-2; then the kept
-- statistics (customer_product, product_buyers, product_pair) by set operations with the user triggers disabled,
-- and the neighbour lists (depth 50) as Store::rebuild_purchase_stats computes them. Then ANALYZE.
-- Run: psql -h 127.0.0.1 -U postgres -d refund_lab -v ON_ERROR_STOP=1 -f load.sql
\timing on
SELECT setseed(0.11);

CREATE TEMP TABLE pref AS
SELECT n, floor(random() * 40)::int AS c1, floor(random() * 40)::int AS c2 FROM generate_series(0, 199999) n;

INSERT INTO customer (id, dek_version, name_ct, name_masked, created_at, updated_at)
SELECT format('01910000-0000-7000-8000-%s', lpad(n::text, 12, '0')), 1, '\x00'::bytea, '*', 0, 0 FROM pref;

INSERT INTO product (id, sku, name, category, price_fen, currency, active, created_at, updated_at)
SELECT format('01900000-0000-7000-8000-%s', lpad(n::text, 12, '0')), format('SKU-%s', lpad(n::text, 5, '0')),
       '商品 ' || n, 'category-' || (n / 50), 1000 + (n::bigint * 7919) % 100000, 'CNY', TRUE, 0, 0
FROM generate_series(0, 1999) n;

CREATE TEMP TABLE ord AS
SELECT o, floor(random() * 200000)::int AS who, 1 + floor(random() * 3)::int AS lines
FROM generate_series(0, 999999) o;

CREATE TEMP TABLE line AS
SELECT o, l, who, prod, qty FROM (
  SELECT ord.o, l, ord.who,
         (CASE WHEN random() < 0.7 THEN p.c1 ELSE p.c2 END) * 50 + least(floor(random() ^ 2 * 50)::int, 49) AS prod,
         1 + floor(random() * 2)::int AS qty
  FROM ord JOIN pref p ON p.n = ord.who, generate_series(1, ord.lines) l
) x;

-- An order skips a repeated product (as the bench does), keeping the first line.
CREATE TEMP TABLE line1 AS
SELECT o, row_number() OVER (PARTITION BY o ORDER BY l) AS line_no, who, prod, qty FROM (
  SELECT DISTINCT ON (o, prod) o, l, who, prod, qty FROM line ORDER BY o, prod, l
) d;

INSERT INTO sales_order (id, customer_id, status, currency, total_fen, points_earned, created_by, placed_at, paid_at,
                         created_at, updated_at)
SELECT format('bench-order-%s', lpad(ord.o::text, 8, '0')),
       format('01910000-0000-7000-8000-%s', lpad(ord.who::text, 12, '0')), 'paid', 'CNY',
       COALESCE(t.total, 0), 0, NULL, 1700000000000 + ord.o, 1700000000000 + ord.o, 1700000000000 + ord.o,
       1700000000000 + ord.o
FROM ord LEFT JOIN (SELECT l.o, SUM(l.qty * (1000 + (l.prod::bigint * 7919) % 100000)) AS total
                    FROM line1 l GROUP BY l.o) t ON t.o = ord.o
ORDER BY ord.o;

INSERT INTO order_item (order_id, line_no, customer_id, product_id, quantity, unit_price_fen, line_total_fen)
SELECT format('bench-order-%s', lpad(o::text, 8, '0')), line_no,
       format('01910000-0000-7000-8000-%s', lpad(who::text, 12, '0')),
       format('01900000-0000-7000-8000-%s', lpad(prod::text, 12, '0')), qty,
       1000 + (prod::bigint * 7919) % 100000, qty * (1000 + (prod::bigint * 7919) % 100000)
FROM line1 ORDER BY o, line_no;

-- Kept statistics, computed as 0026 does, with the triggers off.
ALTER TABLE customer_product DISABLE TRIGGER USER;
INSERT INTO customer_product (customer_id, product_id, units)
SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i JOIN sales_order o ON o.id = i.order_id
WHERE o.status = 'paid' GROUP BY i.customer_id, i.product_id;
ALTER TABLE customer_product ENABLE TRIGGER USER;

INSERT INTO product_buyers (product_id, buyers)
SELECT product_id, COUNT(*) FROM customer_product GROUP BY product_id;

INSERT INTO product_pair (product_id, other_id, customers)
SELECT a.product_id, b.product_id, COUNT(*) FROM customer_product a
JOIN customer_product b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id
GROUP BY a.product_id, b.product_id;

-- Neighbour lists, depth 50 (compute_neighbour_lists! in orders.rs).
INSERT INTO product_neighbour (product_id, rank, neighbour_id, customers)
SELECT product_id, rank, other_id, customers FROM (
  SELECT pair.product_id, pair.other_id, pair.customers,
    ROW_NUMBER() OVER (PARTITION BY pair.product_id
      ORDER BY CAST(pair.customers AS DOUBLE PRECISION) * pair.customers / b.buyers DESC, pair.other_id) AS rank
  FROM product_pair pair JOIN product_buyers b ON b.product_id = pair.other_id
  WHERE pair.customers > 0 AND b.buyers > 0) ranked
WHERE rank <= 50 + 1;
INSERT INTO product_neighbour_cut (product_id, customers, buyers)
SELECT last.product_id, last.customers, b.buyers FROM product_neighbour last
JOIN product_buyers b ON b.product_id = last.neighbour_id
WHERE last.rank = 50 AND EXISTS (SELECT 1 FROM product_neighbour beyond
  WHERE beyond.product_id = last.product_id AND beyond.rank > 50);
DELETE FROM product_neighbour WHERE rank > 50;
DELETE FROM product_neighbour_stale;
DELETE FROM product_neighbour_rise;

-- Loyalty accounts for the customers used by the timing scripts are created on demand (lock_account upserts).
VACUUM ANALYZE;

SELECT (SELECT count(*) FROM customer) AS customers, (SELECT count(*) FROM product) AS products,
       (SELECT count(*) FROM sales_order) AS orders, (SELECT count(*) FROM order_item) AS items,
       (SELECT count(*) FROM customer_product) AS customer_product, (SELECT count(*) FROM product_pair) AS pairs,
       (SELECT count(*) FROM product_neighbour) AS neighbour_rows;
