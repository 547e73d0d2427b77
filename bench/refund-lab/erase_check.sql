-- Erasing a customer cascades to customer_product (one DELETE per erased customer, run by the foreign key), which
-- fires the same trigger. DELETE FROM customer for case :'case', rolled back, with the 0030 function and then with
-- 0032 (created inside the second transaction).
\set ON_ERROR_STOP 1
\ir vars.sql
\timing on
BEGIN;
DELETE FROM customer WHERE id = :'cust';
ROLLBACK;
BEGIN;
\o /dev/null
\ir 0032_customer_product_delete_pairs.sql
\o
DELETE FROM customer WHERE id = :'cust';
ROLLBACK;
