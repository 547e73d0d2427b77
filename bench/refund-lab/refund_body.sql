-- The statements of Store::transition_order(order, 'paid', 'refunded', effect = Reverse) in order, for the
-- customer :'cust' and order :'ord' (psql variables), inside the caller's transaction. The clock_timestamp() marks
-- time the whole (t0..t3, round trips included) and SYNC_UNBOUGHT with its trigger (t1..t2).
SELECT clock_timestamp() AS t0 \gset
UPDATE sales_order SET status = 'refunded', updated_at = 1800000000000,
  paid_at = CASE WHEN 'refunded' = 'paid' THEN 1800000000000 ELSE paid_at END
  WHERE id = :'ord' AND status = 'paid' RETURNING customer_id;
-- SYNC_BOUGHT
INSERT INTO customer_product (customer_id, product_id, units)
  SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i JOIN sales_order o ON o.id = i.order_id
  WHERE i.customer_id = :'cust' AND o.status = 'paid' GROUP BY i.customer_id, i.product_id
  ON CONFLICT (customer_id, product_id) DO UPDATE SET units = excluded.units
  WHERE customer_product.units <> excluded.units;
-- SYNC_UNBOUGHT (fires veil_customer_product_delete)
SELECT clock_timestamp() AS t1 \gset
DELETE FROM customer_product WHERE customer_id = :'cust' AND product_id NOT IN
  (SELECT i.product_id FROM order_item i JOIN sales_order o ON o.id = i.order_id
   WHERE i.customer_id = :'cust' AND o.status = 'paid');
SELECT clock_timestamp() AS t2 \gset
-- loyalty apply_effect, Reverse
INSERT INTO loyalty_account (customer_id, balance, lifetime_points, tier, created_at, updated_at)
  VALUES (:'cust', 0, 0, 'bronze', 1800000000000, 1800000000000)
  ON CONFLICT (customer_id) DO UPDATE SET updated_at = 1800000000000
  RETURNING balance, lifetime_points, tier;
SELECT id, remaining FROM loyalty_entry WHERE customer_id = :'cust' AND kind = 'earn'
  AND remaining > 0 AND expires_at <= 1800000000000 ORDER BY expires_at, id;
SELECT id, points, remaining FROM loyalty_entry WHERE order_id = :'ord' AND kind = 'earn';
UPDATE loyalty_entry SET remaining = 0 WHERE order_id = :'ord' AND kind = 'earn';
INSERT INTO loyalty_entry (id, customer_id, kind, points, remaining, order_id, expires_at, reason, actor_id,
  created_at) VALUES ('lab-reverse', :'cust', 'reverse', -100, 0, :'ord', NULL, NULL, NULL, 1800000000000);
UPDATE loyalty_account SET balance = balance + -100, lifetime_points = lifetime_points + -100,
  updated_at = 1800000000000 WHERE customer_id = :'cust' AND balance + -100 >= 0;
-- audit append (one event)
UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash;
INSERT INTO audit_log (seq, at, actor_id, actor_name, actor_role, source_ip, action, outcome, customer_ids, fields,
  grant_id, purpose, detail, prev_hash, hash)
  SELECT seq, 1800000000000, NULL, 'admin', 'admin', NULL, 'order.status', 'ok', '["' || :'cust' || '"]', '[]',
  NULL, NULL, '{}', hash, hash FROM audit_head WHERE id = 1;
INSERT INTO audit_subject (customer_id, seq)
  SELECT value, (SELECT seq FROM audit_head WHERE id = 1) FROM jsonb_array_elements_text(('["' || :'cust' || '"]')::jsonb)
  ON CONFLICT DO NOTHING;
UPDATE audit_head SET hash = hash WHERE id = 1;
SELECT clock_timestamp() AS t3 \gset
SELECT 'RESULT', round(extract(epoch FROM :'t3'::timestamptz - :'t0'::timestamptz) * 1000, 3) AS total_ms,
       round(extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz) * 1000, 3) AS unbought_ms;
