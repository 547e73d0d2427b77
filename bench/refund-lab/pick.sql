-- Picks the orders to refund: A = a customer with few orders whose paid order has 2 products bought on no other
-- order of theirs (the refund deletes 2 customer_product rows); B = the same with a customer of many orders.
-- Gives each order an earn lot (points_earned > 0), as an order paid through the service has, so the refund runs
-- the loyalty "refund" branch (close_order_lot, reverse entry, adjust_account).
DROP TABLE IF EXISTS lab_case;
CREATE TABLE lab_case (name text PRIMARY KEY, order_id text, customer_id text, orders int, products int);
WITH per_cust AS (SELECT customer_id, count(*) AS orders FROM sales_order GROUP BY customer_id),
two AS (
  SELECT i.order_id, i.customer_id FROM order_item i GROUP BY i.order_id, i.customer_id HAVING count(*) = 2
     AND NOT EXISTS (SELECT 1 FROM order_item j WHERE j.customer_id = i.customer_id AND j.order_id <> i.order_id
                     AND j.product_id IN (SELECT k.product_id FROM order_item k WHERE k.order_id = i.order_id))
)
INSERT INTO lab_case
SELECT 'A', t.order_id, t.customer_id, pc.orders, (SELECT count(*) FROM customer_product cp WHERE cp.customer_id = t.customer_id)
FROM two t JOIN per_cust pc USING (customer_id) WHERE pc.orders = 4 ORDER BY t.order_id LIMIT 1;
WITH per_cust AS (SELECT customer_id, count(*) AS orders FROM sales_order GROUP BY customer_id),
two AS (
  SELECT i.order_id, i.customer_id FROM order_item i GROUP BY i.order_id, i.customer_id HAVING count(*) = 2
     AND NOT EXISTS (SELECT 1 FROM order_item j WHERE j.customer_id = i.customer_id AND j.order_id <> i.order_id
                     AND j.product_id IN (SELECT k.product_id FROM order_item k WHERE k.order_id = i.order_id))
)
INSERT INTO lab_case
SELECT 'B', t.order_id, t.customer_id, pc.orders, (SELECT count(*) FROM customer_product cp WHERE cp.customer_id = t.customer_id)
FROM two t JOIN per_cust pc USING (customer_id) WHERE pc.orders >= 11 ORDER BY pc.orders DESC, t.order_id LIMIT 1;

UPDATE sales_order SET points_earned = 100 WHERE id IN (SELECT order_id FROM lab_case);
INSERT INTO loyalty_account (customer_id, balance, lifetime_points, tier, created_at, updated_at)
SELECT customer_id, 100, 100, 'bronze', 0, 0 FROM lab_case ON CONFLICT DO NOTHING;
INSERT INTO loyalty_entry (id, customer_id, kind, points, remaining, order_id, expires_at, reason, actor_id, created_at)
SELECT 'lab-earn-' || name, customer_id, 'earn', 100, 100, order_id, 4102444800000, NULL, NULL, 0 FROM lab_case
ON CONFLICT DO NOTHING;
ANALYZE sales_order; ANALYZE loyalty_entry; ANALYZE loyalty_account;
SELECT * FROM lab_case;
