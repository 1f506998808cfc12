#!/bin/bash
# Wall time of `taskspace info --help` and of a bad-argument call, best of 3, for each source
# tree given as NAME:SRC (default: this checkout). Run it alone on the machine:
#   git archive 8fc59dd src | tar -x -C /tmp/before
#   flock -x /tmp/cpu.lock scripts/measure_cli_startup.sh before:/tmp/before/src after:src
P=${PYTHON:-python}
lscpu | grep "Model name"
[ $# -gt 0 ] || set -- "this:$(dirname "$0")/../src"
for label in "$@"; do
  name=${label%%:*}; src=${label#*:}
  for args in "info --help" "info /nonexistent/store"; do
    best=999
    for i in 1 2 3; do
      t0=$(date +%s.%N); PYTHONPATH=$src $P -m taskspace $args >/dev/null 2>&1; t1=$(date +%s.%N)
      t=$(echo "$t1 - $t0" | bc); best=$(echo "if ($t < $best) $t else $best" | bc)
    done
    echo "$name  taskspace $args: best of 3 $best s"
  done
done
