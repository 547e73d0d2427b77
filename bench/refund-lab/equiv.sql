-- Runs scenario :'scen' in a rolled-back transaction, with the 0030 function or (-v fixfile=FILE) a 0032 one, and prints
-- the derived state it leaves: the product_buyers / product_pair rows this transaction wrote, order-independent
-- checksums of both whole tables, and the product ids in product_neighbour_stale / product_neighbour_rise
-- (marked_at is a clock reading, so it is left out). Run twice and diff (equiv.sh).
\set ON_ERROR_STOP 1
\pset footer off
BEGIN;
\if :{?fixfile}
\o /dev/null
\ir :fixfile
\o
\endif
\o /dev/null
\ir :scen
\o
SELECT 'buyers_written', product_id, buyers FROM product_buyers WHERE xmin = pg_current_xact_id()::xid ORDER BY 2;
SELECT 'pairs_written', product_id, other_id, customers FROM product_pair
  WHERE xmin = pg_current_xact_id()::xid ORDER BY 2, 3;
SELECT 'buyers_checksum', count(*), sum(hashtext(product_id || '/' || buyers)::bigint), sum(buyers) FROM product_buyers;
SELECT 'pairs_checksum', count(*), sum(hashtext(product_id || '/' || other_id || '/' || customers)::bigint),
  sum(customers) FROM product_pair;
SELECT 'stale', product_id FROM product_neighbour_stale ORDER BY 2;
SELECT 'rise', product_id FROM product_neighbour_rise ORDER BY 2;
SELECT 'customer_product_rows', count(*) FROM customer_product;
ROLLBACK;
