#!/usr/bin/env bash
# Serve the app with a Celery worker, beat and the HL7 listener; Ctrl-C (or any one of
# them exiting) stops all. Uses the embedded default unless DATABASE_URL / REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DEBUG=${DEBUG:-true}
export SITE_URL=${SITE_URL:-http://$HOST:$PORT}
CELERY="$(dirname "$PY")/celery"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping web, worker and beat..."
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

# Start the celery binaries themselves (not through a subshell) so that $! is their PID.
"$CELERY" -A config worker --loglevel=INFO --concurrency=2 --hostname="worker@%h" -Q celery,imports &
pids+=($!)
"$CELERY" -A config beat --loglevel=INFO &
pids+=($!)
"$PY" manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
HL7_PORT=${HL7_PORT:-2575}
"$PY" manage.py hl7_listen --host "$HOST" --port "$HL7_PORT" &
pids+=($!)

echo "Serving http://$HOST:$PORT/ (worker and beat running; HL7 MLLP listener on $HOST:$HL7_PORT). Ctrl-C stops all."
# Return as soon as any of them exits; the trap stops the others.
wait -n "${pids[@]}"
