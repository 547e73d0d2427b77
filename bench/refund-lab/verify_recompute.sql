-- After scenario :'scen' with the 0032 function of -v fixfile=FILE, product_buyers and product_pair (non-zero rows) equal a recompute
-- from customer_product (0026's definitions). Rolled back. Expect two rows of 0 mismatches.
\set ON_ERROR_STOP 1
BEGIN;
\o /dev/null
\ir :fixfile
\ir :scen
\o
SELECT 'buyers_mismatches', count(*) FROM (
  SELECT product_id, buyers FROM product_buyers WHERE buyers > 0
  EXCEPT ALL SELECT product_id, COUNT(*) FROM customer_product GROUP BY product_id) d;
SELECT 'pairs_mismatches', count(*) FROM (
  (SELECT product_id, other_id, customers FROM product_pair WHERE customers > 0
   EXCEPT ALL
   SELECT a.product_id, b.product_id, COUNT(*) FROM customer_product a
   JOIN customer_product b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id
   GROUP BY a.product_id, b.product_id)
  UNION ALL
  (SELECT a.product_id, b.product_id, COUNT(*) FROM customer_product a
   JOIN customer_product b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id
   GROUP BY a.product_id, b.product_id
   EXCEPT ALL
   SELECT product_id, other_id, customers FROM product_pair WHERE customers > 0)) d;
ROLLBACK;
