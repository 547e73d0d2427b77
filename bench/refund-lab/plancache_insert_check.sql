-- Same question for veil_customer_product_insert (unchanged by 0032): after a large insert earlier in the session
-- (here: 2,000 customers' rows deleted and inserted back, rolled back), what does a paid order's SYNC_BOUGHT cost?
\set ON_ERROR_STOP 1
\set case A
\ir vars.sql
BEGIN;
CREATE TEMP TABLE keep ON COMMIT DROP AS
  SELECT * FROM customer_product WHERE customer_id IN (SELECT id FROM customer ORDER BY id LIMIT 2000);
DELETE FROM customer_product WHERE customer_id IN (SELECT id FROM customer ORDER BY id LIMIT 2000);
SELECT clock_timestamp() AS t1 \gset
INSERT INTO customer_product SELECT * FROM keep;
SELECT clock_timestamp() AS t2 \gset
SELECT 'RESULT bulk insert', round(extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz) * 1000, 3);
ROLLBACK;
BEGIN;
\ir pay_body.sql
ROLLBACK;
BEGIN;
\ir pay_body.sql
ROLLBACK;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = log;
BEGIN;
\ir pay_body.sql
ROLLBACK;
