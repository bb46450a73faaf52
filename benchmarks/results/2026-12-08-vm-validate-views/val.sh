#!/bin/bash
# The validate step alone, two builds alternating on the same converted file.
# Usage: val.sh SF ROUNDS BASE NEW
S=/work/main/benchmarks/specs/lineitem; D=/var/tmp/ferry-bench-data
sf=$1; runs=$2; base=$3; new=$4
"$base" convert --dataset $S --input $D/lineitem-sf$sf.csv --to parquet --output /var/tmp/cv/v$sf.parquet \
  --force -q --work-dir /var/tmp/cv/w$sf --compression snappy --step convert > /dev/null
for i in $(seq $runs); do
  for b in base new; do
    bin=$base; [ $b = new ] && bin=$new
    out=$( { /usr/bin/time -f "TIME %e %U %S %M" "$bin" convert --dataset $S --input $D/lineitem-sf$sf.csv --to parquet \
      --output /var/tmp/cv/v$sf.parquet -q --work-dir /var/tmp/cv/w$sf --compression snappy --step validate; } 2>&1)
    v=$(echo "$out" | sed -n 's/^validation: \([a-z]*\) .* in \([0-9.]*\) s$/\1 \2/p')
    t=$(echo "$out" | sed -n 's/^TIME //p')
    echo "sf=$sf $b run=$i validate=$v wall/user/sys/rssKB: $t"
  done
done
