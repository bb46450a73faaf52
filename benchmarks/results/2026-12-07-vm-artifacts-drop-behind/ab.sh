#!/bin/bash
# ab.sh load|run N [full|free] : alternates the artifact write modes in one binary
what=$1; n=$2; state=${3:-full}
F=/var/tmp/ab-art/ferry; D=/var/tmp/ferry-bench-data; R=/work/main
W=/var/tmp/ab-art/w
for i in $(seq 1 $n); do
  for m in plain writeback drop; do
    psql "$FERRY_TEST_DATABASE_URL" -X -q -c "DROP TABLE IF EXISTS lineitem" >/dev/null 2>&1
    rm -rf $W; mkdir -p $W/work $W/out
    if [ $state = dirty ]; then cat /var/tmp/filler > /dev/null; dd if=/dev/zero of=/var/tmp/dirt bs=8M count=500 2>/dev/null;
    elif [ $state = full ]; then cat /var/tmp/filler $D/lineitem-sf10.csv > /dev/null; else sync; echo 3 > /proc/sys/vm/drop_caches; fi
    cat $D/lineitem-sf1.csv > /dev/null
    fr=$(free -m | awk '/Mem:/{print $4}')
    if [ $what = load ]; then
      cmd="$F load --dataset $R/benchmarks/specs/lineitem --input $D/lineitem-sf1.csv --database-url $FERRY_TEST_DATABASE_URL --work-dir $W/work --force -q"
    else
      cmd="$F run --input $D/lineitem-sf1.csv --specs $R/benchmarks/specs --work-dir $W/work --output $W/out --database-url $FERRY_TEST_DATABASE_URL --force -q"
    fi
    FERRY_AB_MODE=$m /usr/bin/time -f "$what $state $m %e s peak %M KB user %U sys %S free-before ${fr} MB" $cmd 2>&1 | tail -1
    psql "$FERRY_TEST_DATABASE_URL" -X -qAt -c "SELECT count(*) FROM lineitem" | sed 's/^/  rows /'
  done
done
