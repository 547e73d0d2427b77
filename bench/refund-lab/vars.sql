-- psql variables for case :'case': ord/cust (refund), newprod (paid direction: the most popular product of the
-- customer's most bought category that they have not bought).
SELECT order_id AS ord, customer_id AS cust FROM lab_case WHERE name = :'case' \gset
SELECT p.id AS newprod FROM product p
WHERE p.category = (SELECT p2.category FROM customer_product cp JOIN product p2 ON p2.id = cp.product_id
                    WHERE cp.customer_id = :'cust' GROUP BY p2.category ORDER BY count(*) DESC, p2.category LIMIT 1)
  AND NOT EXISTS (SELECT 1 FROM customer_product cp WHERE cp.customer_id = :'cust' AND cp.product_id = p.id)
ORDER BY p.id LIMIT 1 \gset
