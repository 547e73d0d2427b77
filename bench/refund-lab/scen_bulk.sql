-- Erasure-sized: every purchase of 2,000 customers in one statement (~18,000 rows).
SELECT clock_timestamp() AS t1 \gset
DELETE FROM customer_product WHERE customer_id IN (SELECT id FROM customer ORDER BY id LIMIT 2000);
SELECT clock_timestamp() AS t2 \gset
SELECT 'RESULT', round(extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz) * 1000, 3) AS delete_ms;
