#!/bin/sh
# equiv.sh: for each scenario, the derived state after it with the old (0030) function and with each 0032 variant
# (plain = alt_0032_plain_rewrite.sql, fix = 0032_customer_product_delete_pairs.sql); diffs against the old.
cd "$(dirname "$0")"
for s in refundA refundB multi bulk pay; do
  psql -h 127.0.0.1 -U postgres -d refund_lab -AtF' ' -v scen=scen_$s.sql -f equiv.sql > equiv_${s}_old.txt 2>&1
  psql -h 127.0.0.1 -U postgres -d refund_lab -AtF' ' -v scen=scen_$s.sql \
    -v fixfile=alt_0032_plain_rewrite.sql -f equiv.sql > equiv_${s}_plain.txt 2>&1
  psql -h 127.0.0.1 -U postgres -d refund_lab -AtF' ' -v scen=scen_$s.sql \
    -v fixfile=0032_customer_product_delete_pairs.sql -f equiv.sql > equiv_${s}_fix.txt 2>&1
  for v in plain fix; do
    if cmp -s equiv_${s}_old.txt equiv_${s}_$v.txt; then r=identical; else r=DIFFERENT; fi
    echo "$s old vs $v: $r ($(grep -c '^buyers_written' equiv_${s}_old.txt) buyers rows, $(grep -c '^pairs_written' equiv_${s}_old.txt) pair rows written, $(grep -c '^stale' equiv_${s}_old.txt) stale, $(grep -c '^rise' equiv_${s}_old.txt) rises)"
  done
done
