-- Side check (not the bench's cause): close_order_lot looks up an order's earn lot by order_id, which no index of
-- loyalty_entry leads with. With one earn lot per paid order (a ledger where orders are paid through the service),
-- it is a sequential scan. Rolled back.
\set ON_ERROR_STOP 1
\timing on
BEGIN;
INSERT INTO loyalty_entry (id, customer_id, kind, points, remaining, order_id, expires_at, reason, actor_id, created_at)
SELECT 'lab-lot-' || o.id, o.customer_id, 'earn', 10, 10, o.id, 4102444800000, NULL, NULL, o.created_at
FROM sales_order o WHERE o.id NOT IN (SELECT order_id FROM loyalty_entry WHERE order_id IS NOT NULL);
ANALYZE loyalty_entry;
EXPLAIN (ANALYZE, BUFFERS) SELECT id, points, remaining FROM loyalty_entry WHERE order_id = 'bench-order-00495927' AND kind = 'earn';
CREATE INDEX loyalty_entry_order ON loyalty_entry (order_id);
EXPLAIN (ANALYZE, BUFFERS) SELECT id, points, remaining FROM loyalty_entry WHERE order_id = 'bench-order-00495927' AND kind = 'earn';
ROLLBACK;
