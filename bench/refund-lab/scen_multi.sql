-- One DELETE over 20 customers who all bought the two most popular products of category 0 (and possibly more):
-- `removed` holds several customers, the same product for many of them, and two products per customer.
DELETE FROM customer_product WHERE product_id IN ('01900000-0000-7000-8000-000000000000',
                                                 '01900000-0000-7000-8000-000000000001')
  AND customer_id IN (SELECT a.customer_id FROM customer_product a JOIN customer_product b
                        ON b.customer_id = a.customer_id AND b.product_id = '01900000-0000-7000-8000-000000000001'
                      WHERE a.product_id = '01900000-0000-7000-8000-000000000000'
                      ORDER BY a.customer_id LIMIT 20);
