#!/usr/bin/env bash
# Serve the app with a Celery worker and beat; Ctrl-C (or any one of them exiting)
# stops all three. Uses the embedded default unless DATABASE_URL / REDIS_URL are set.
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
"$CELERY" -A config worker --loglevel=INFO --concurrency=2 --hostname="worker@%h" &
pids+=($!)
"$CELERY" -A config beat --loglevel=INFO &
pids+=($!)
"$PY" manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)

echo "Serving http://$HOST:$PORT/ (worker and beat running). Ctrl-C stops all."
# Return as soon as any of them exits; the trap stops the others.
wait -n "${pids[@]}"
