#!/bin/bash
# A/B of the writer's digest grouping (temporary FERRY_AB_DIGEST_BYTES; 0 = per batch, the old
# behaviour) and the CSV chunk size (temporary FERRY_AB_CHUNK) on one release build, alternating.
# Each variant is "chunk:digest_bytes".
F=${F:-$HOME/.cache/ferry-target/release/ferry}
S=/work/main/benchmarks/specs/lineitem
D=/var/tmp/ferry-bench-data
sf=$1; runs=$2; shift 2
for i in $(seq $runs); do
  for v in "$@"; do
    c=${v%%:*}; g=${v##*:}
    out=$( { /usr/bin/time -f "%e %U %S %M" env FERRY_AB_CHUNK=$c FERRY_AB_DIGEST_BYTES=$g $F convert --dataset $S --input $D/lineitem-sf$sf.csv --to parquet --output /var/tmp/cv/ab.parquet --force -q --work-dir /var/tmp/cv/w --compression snappy >/dev/null; } 2>&1 | tail -1)
    echo "validated sf=$sf chunk=$c digest_group=$g run=$i wall/user/sys/rssKB: $out"
  done
done
