-- One refund of case :'case' (A or B) with auto_explain on every statement, nested ones (the trigger's) included;
-- rolled back. Run: psql -h 127.0.0.1 -U postgres -d refund_lab -v case=A -f refund_explain.sql
-- Add -v fix=1 to run it with the 0032 function (created inside the transaction, so rolled back with it).
\ir vars.sql
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = log;
\timing on
BEGIN;
\if :{?fix}
\ir 0032_customer_product_delete_pairs.sql
\endif
\ir refund_body.sql
-- derived state after the refund
SELECT * FROM product_buyers WHERE product_id IN (SELECT product_id FROM order_item WHERE order_id = :'ord') ORDER BY 1;
ROLLBACK;
