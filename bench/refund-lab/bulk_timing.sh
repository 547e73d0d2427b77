#!/bin/sh
# Regression check for large deletes: scen_bulk.sql (~18,000 rows of 2,000 customers in one DELETE), 3 runs each
# with the 0030 function and 0032_customer_product_delete_pairs.sql, each in a rolled-back transaction.
cd "$(dirname "$0")"
for v in old new; do
  for i in 1 2 3; do
    { echo "BEGIN;"; [ $v = new ] && echo "\\o /dev/null" && echo "\\ir 0032_customer_product_delete_pairs.sql" && echo "\\o";
      echo "\\ir scen_bulk.sql"; echo "ROLLBACK;"; } |
    psql -h 127.0.0.1 -U postgres -d refund_lab -v ON_ERROR_STOP=1 -AtF' ' -f - | grep RESULT | sed "s/^/$v /"
  done
done
