#!/bin/bash
# A/B of the CSV chunk size (temporary FERRY_AB_CHUNK) on one release build, alternating.
F=${F:-$HOME/.cache/ferry-target/release/ferry}
S=/work/main/benchmarks/specs/lineitem
D=/var/tmp/ferry-bench-data
what=$1; runs=$2; shift 2
for i in $(seq $runs); do
  for c in "$@"; do
    case $what in
      convert) out=$( { /usr/bin/time -f "%e %U %S %M" env FERRY_AB_CHUNK=$c $F convert --dataset $S --input $D/lineitem-sf1.csv --to parquet --output /var/tmp/cv/ab.parquet --force -q --work-dir /var/tmp/cv/w --compression snappy --no-validate >/dev/null; } 2>&1 | tail -1);;
      convert10) out=$( { /usr/bin/time -f "%e %U %S %M" env FERRY_AB_CHUNK=$c $F convert --dataset $S --input $D/lineitem-sf10.csv --to parquet --output /var/tmp/cv/ab.parquet --force -q --work-dir /var/tmp/cv/w --compression snappy --no-validate >/dev/null; } 2>&1 | tail -1);;
      validated) out=$( { /usr/bin/time -f "%e %U %S %M" env FERRY_AB_CHUNK=$c $F convert --dataset $S --input $D/lineitem-sf1.csv --to parquet --output /var/tmp/cv/ab.parquet --force -q --work-dir /var/tmp/cv/w --compression snappy >/dev/null; } 2>&1 | tail -1);;
      load) psql -q "$DATABASE_URL" -c "drop table if exists lineitem" 2>/dev/null
            rm -rf /var/tmp/ab-chunk/w
            out=$( { /usr/bin/time -f "%e %U %S %M" env FERRY_AB_CHUNK=$c $F load -q --force --dataset $S --work-dir /var/tmp/ab-chunk/w $D/lineitem-sf1.csv >/dev/null; } 2>&1 | tail -1);;
    esac
    echo "$what chunk=$c run=$i wall/user/sys/rssKB: $out"
  done
done
