#!/bin/sh
# interleaved.sh BODY(refund|pay) CASE(A|B) ROUNDS RUNS: ROUNDS rounds of (old, plain, fix), each a fresh session of
# RUNS+1 rolled-back transactions (the first discarded as warm-up); the median over all kept runs per variant, so
# that load drift on the machine (a build was running) falls on all variants alike.
set -e
cd "$(dirname "$0")"
body=$1; case=$2; rounds=$3; runs=$4
raw=$(mktemp /tmp/refund-lab-raw-XXXX)
r=0
while [ $r -lt "$rounds" ]; do
  for variant in old plain fix; do
    script=$(mktemp /tmp/refund-lab-XXXX.sql)
    {
      echo "\\set case $case"
      echo "\\ir $(pwd)/vars.sql"
      [ "$variant" = plain ] && echo "\\ir $(pwd)/alt_0032_plain_rewrite.sql"
      [ "$variant" = fix ] && echo "\\ir $(pwd)/0032_customer_product_delete_pairs.sql"
      i=0
      while [ $i -le "$runs" ]; do
        echo "BEGIN;"; echo "\\ir $(pwd)/${body}_body.sql"; echo "ROLLBACK;"; i=$((i+1))
      done
      [ "$variant" != old ] && echo "\\ir $(pwd)/old_function.sql"
    } > "$script"
    psql -h 127.0.0.1 -U postgres -d refund_lab -v ON_ERROR_STOP=1 -AtF' ' -f "$script" | grep '^RESULT' |
      tail -n +2 | sed "s/^RESULT/$variant/" >> "$raw"
    rm -f "$script"
  done
  r=$((r+1))
done
for variant in old plain fix; do
  grep "^$variant " "$raw" | awk -v v="$variant" -v b="$body" -v c="$case" '{t[NR]=$2; u[NR]=$3} END {
    n=asort(t); asort(u); m=int((n+1)/2);
    printf "%-4s %s case %s: runs=%d  whole transaction median %.2f ms (min %.2f, max %.2f)  trigger statement median %.2f ms (min %.2f)\n",
      v, b, c, n, t[m], t[1], t[n], u[m], u[1] }'
done
rm -f "$raw"
