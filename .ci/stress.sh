#!/usr/bin/env bash
# The timing-sensitive tests (real servers, kills, faults, timers), ROUNDS times in a row while
# another process keeps one core busy, as on a loaded CI machine. Each round's output is kept in
# var/stress/round-<n>.log, so that a rare failure can be read afterwards; stops at the first one.
#   make stress [ROUNDS=3]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
mkdir -p var/stress
python3 -c "while True: pass" &
load=$!
trap 'kill "$load" 2>/dev/null' EXIT
status=0
for i in $(seq "$rounds"); do
  started=$(date +%s)
  .venv/bin/python -m pytest -q -p no:cacheprovider --durations=5 \
    tests/intake/service/test_service.py tests/intake/service/test_multi_instance.py \
    tests/intake/service/test_faults.py tests/intake/service/test_runners.py \
    tests/intake/service/test_metrics.py tests/intake/channels/test_doorbell.py \
    tests/intake/channels/test_imap.py tests/store/test_write_queue.py \
    tests/notifier/test_sender.py tests/intake/pipeline/test_lock.py \
    > "var/stress/round-$i.log" 2>&1
  status=$?
  echo "round $i: $(tail -1 "var/stress/round-$i.log") ($(( $(date +%s) - started )) s; var/stress/round-$i.log)"
  [ "$status" -eq 0 ] || break
done
exit "$status"
