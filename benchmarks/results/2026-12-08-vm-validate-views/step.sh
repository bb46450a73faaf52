#!/bin/bash
# The convert step alone, with the digest (--step convert: validation is to follow, so the
# writer digests) and without it (--no-validate), alternating; task-clock (user + system CPU)
# and page faults from `perf stat` (this VM exposes no hardware counters).
# Usage: step.sh SF ROUNDS BINARY
S=/work/main/benchmarks/specs/lineitem; D=/var/tmp/ferry-bench-data
sf=$1; runs=$2; bin=$3
mkdir -p /var/tmp/cv
one() {
  local label=$1; shift
  local out conv tc pf
  out=$(perf stat -x, -e task-clock,page-faults "$bin" convert --dataset $S --input $D/lineitem-sf$sf.csv \
      --to parquet --output /var/tmp/cv/st.parquet --force -q --work-dir /var/tmp/cv/w --compression snappy "$@" 2>&1)
  conv=$(echo "$out" | sed -n 's/^converted .* in \([0-9.]*\) s:.*/\1/p')
  tc=$(echo "$out" | awk -F, '/task-clock/{printf "%.2f", $1/1000}')
  pf=$(echo "$out" | awk -F, '/page-faults/{print $1}')
  echo "sf=$sf $label convert=${conv}s cpu=${tc}s faults=$pf"
}
for i in $(seq $runs); do
  one "digest   " --step convert
  one "no-digest" --no-validate
done
