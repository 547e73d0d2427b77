-- PostgreSQL's 0032 rewrites its statement-level delete trigger of customer_product (a UNION ALL with the
-- transition table made every refund scan the whole table). SQLite's trigger is a row trigger that looks up
-- OLD.customer_id's products through the primary key: nothing to change there.

-- A refund looks up the order's earn lot (`WHERE order_id = $1 AND kind = 'earn'`, Store's close_order_lot): without
-- an index that read every ledger entry.
CREATE INDEX loyalty_entry_order ON loyalty_entry (order_id) WHERE order_id IS NOT NULL;
