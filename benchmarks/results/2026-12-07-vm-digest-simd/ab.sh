#!/bin/bash
# A/B of two release builds of ferry, alternating, on the default (validated) CSV -> Parquet
# conversion, plus the conversion without validation on the new build, for the share
# validation adds. Each line: the convert step's and the validate step's own seconds (ferry's
# report), then wall, user and system CPU seconds and peak RSS (KB) of the whole command.
# Usage: ab.sh SF ROUNDS BASE_BINARY NEW_BINARY
S=/work/main/benchmarks/specs/lineitem
D=/var/tmp/ferry-bench-data
sf=$1; runs=$2; base=$3; new=$4
mkdir -p /var/tmp/cv
run() {
  local label=$1; shift
  local out
  out=$( { /usr/bin/time -f "TIME %e %U %S %M" "$@" convert --dataset $S --input $D/lineitem-sf$sf.csv \
      --to parquet --output /var/tmp/cv/ab.parquet --force -q --work-dir /var/tmp/cv/w \
      --compression snappy $EXTRA; } 2>&1)
  local conv val t
  conv=$(echo "$out" | sed -n 's/^converted .* in \([0-9.]*\) s:.*/\1/p')
  val=$(echo "$out" | sed -n 's/^validation: .* in \([0-9.]*\) s$/\1/p')
  t=$(echo "$out" | sed -n 's/^TIME //p')
  echo "sf=$sf $label convert=${conv}s validate=${val:--}s wall/user/sys/rssKB: $t"
}
for i in $(seq $runs); do
  EXTRA= run "base validated run=$i" "$base"
  EXTRA= run "new  validated run=$i" "$new"
  EXTRA=--no-validate run "new  no-validation run=$i" "$new"
done
