-- Recommendations' popularity fallbacks walk products from the most bought down (`Store::popular_products`)
-- instead of sorting the whole catalogue per request.
CREATE INDEX product_buyers_rank ON product_buyers (buyers DESC, product_id);
