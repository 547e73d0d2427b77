-- The statements of a paid order entered through the service (Store::insert_order with status 'paid', as
-- recommend-bench's paid_order_write: 1 item, a product new to the customer) for :'cust' / :'newprod', followed by
-- the loyalty earn of the paid transition, inside the caller's transaction. t1..t2 times SYNC_BOUGHT (fires
-- veil_customer_product_insert) + SYNC_UNBOUGHT (fires veil_customer_product_delete with an empty `removed`).
SELECT clock_timestamp() AS t0 \gset
INSERT INTO sales_order (id, customer_id, status, currency, total_fen, points_earned, created_by, placed_at, paid_at,
  created_at, updated_at) VALUES ('lab-pay-order', :'cust', 'paid', 'CNY', 5000, 50, NULL, 1800000000000,
  1800000000000, 1800000000000, 1800000000000);
INSERT INTO order_item (order_id, line_no, customer_id, product_id, quantity, unit_price_fen, line_total_fen)
  VALUES ('lab-pay-order', 1, :'cust', :'newprod', 1, 5000, 5000);
SELECT clock_timestamp() AS t1 \gset
-- SYNC_BOUGHT
INSERT INTO customer_product (customer_id, product_id, units)
  SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i JOIN sales_order o ON o.id = i.order_id
  WHERE i.customer_id = :'cust' AND o.status = 'paid' GROUP BY i.customer_id, i.product_id
  ON CONFLICT (customer_id, product_id) DO UPDATE SET units = excluded.units
  WHERE customer_product.units <> excluded.units;
-- SYNC_UNBOUGHT
DELETE FROM customer_product WHERE customer_id = :'cust' AND product_id NOT IN
  (SELECT i.product_id FROM order_item i JOIN sales_order o ON o.id = i.order_id
   WHERE i.customer_id = :'cust' AND o.status = 'paid');
SELECT clock_timestamp() AS t2 \gset
-- loyalty earn
INSERT INTO loyalty_account (customer_id, balance, lifetime_points, tier, created_at, updated_at)
  VALUES (:'cust', 0, 0, 'bronze', 1800000000000, 1800000000000)
  ON CONFLICT (customer_id) DO UPDATE SET updated_at = 1800000000000
  RETURNING balance, lifetime_points, tier;
SELECT id, remaining FROM loyalty_entry WHERE customer_id = :'cust' AND kind = 'earn'
  AND remaining > 0 AND expires_at <= 1800000000000 ORDER BY expires_at, id;
INSERT INTO loyalty_entry (id, customer_id, kind, points, remaining, order_id, expires_at, reason, actor_id,
  created_at) VALUES ('lab-earn-pay', :'cust', 'earn', 50, 50, 'lab-pay-order', 4102444800000, NULL, NULL,
  1800000000000);
UPDATE loyalty_account SET balance = balance + 50, lifetime_points = lifetime_points + 50,
  updated_at = 1800000000000 WHERE customer_id = :'cust' AND balance + 50 >= 0;
-- audit append (one event)
UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash;
INSERT INTO audit_log (seq, at, actor_id, actor_name, actor_role, source_ip, action, outcome, customer_ids, fields,
  grant_id, purpose, detail, prev_hash, hash)
  SELECT seq, 1800000000000, NULL, 'admin', 'admin', NULL, 'order.create', 'ok', '["' || :'cust' || '"]', '[]',
  NULL, NULL, '{}', hash, hash FROM audit_head WHERE id = 1;
INSERT INTO audit_subject (customer_id, seq)
  SELECT value, (SELECT seq FROM audit_head WHERE id = 1) FROM jsonb_array_elements_text(('["' || :'cust' || '"]')::jsonb)
  ON CONFLICT DO NOTHING;
UPDATE audit_head SET hash = hash WHERE id = 1;
SELECT clock_timestamp() AS t3 \gset
SELECT 'RESULT', round(extract(epoch FROM :'t3'::timestamptz - :'t0'::timestamptz) * 1000, 3) AS total_ms,
       round(extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz) * 1000, 3) AS sync_ms;
