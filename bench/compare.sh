#!/bin/sh
# Before/after figures of the hot-path workloads in one run, alternating the two checkouts:
#   bench/compare.sh /path/to/older/checkout [rounds]
# Each line is one fresh interpreter per checkout (compiled kernel, best of 3 inside it).
set -eu
base=$1; rounds=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
for w in "dispatch 2000" "dispatch 20000" "worker_dispatch 2000" "steps 10000" "sleeps 20000" \
         "bytes_finished 2000" "bytes_parked 2000"; do
    i=0
    while [ "$i" -lt "$rounds" ]; do
        printf 'before %s ' "$w"; INNGEST_DO_BENCH_ROOT=$base python "$here/bench/hotpath.py" $w 3
        printf 'after  %s ' "$w"; python "$here/bench/hotpath.py" $w 3
        i=$((i + 1))
    done
done
