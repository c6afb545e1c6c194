#!/bin/bash
# One dump/restore round of a restore test program, run as PID 1 of a fresh
# PID namespace (the caller runs it under `unshare --pid --fork
# --mount-proc`), so the dumped PID is free again once the program is gone:
# start the program, wait until it is ready, dump it (which kills it), reap
# it, restore it with Ferry staying its parent, send SIGTERM, and exit with
# the restored program's exit status (Ferry passes it on).
#
#   restore_scenario.sh FERRY WORKDIR PROGRAM [ARGS...]
#
# Variants (environment):
#   MODE=detached   restore with -d --pidfile; the pidfile must name the PID,
#                   and the program's last line ("all intact") decides
#   MODE=pid-taken  dump with -R (the program keeps its PID): restore must
#                   fail saying that PID is in use
#   RUN_BEFORE_TERM=SECONDS  let the restored program run that long first
#   PAGE_SERVER_TLS=CA,CERT,KEY  migrate as on two hosts: memory goes to a
#                   `ferry page-server --tls` (its own -D), the local images
#                   are copied next to what it received, restore runs there
set -u
FERRY=$1 WORK=$2 PROGRAM=$3
shift 3
# Nothing of the test runner's (pipes, sockets) may leak into the program.
for fd in $(ls /proc/$$/fd); do
  [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
done
mkdir -p "$WORK/img"
cd "$WORK" || exit 100

wait_for() {  # FILE TEXT [PID]
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
    sleep 0.05
  done
  return 1
}

setsid "$PROGRAM" "$WORK/status" "$@" </dev/null >"$WORK/prog.out" 2>&1 &
PID=$!
wait_for "$WORK/status" ready "$PID" || { echo "program did not get ready"; exit 101; }
sleep 0.1
if [ "${MODE:-}" = pid-taken ]; then
  "$FERRY" dump -R -t "$PID" -D "$WORK/img" -v4 -o dump.log || { echo "dump failed"; exit 102; }
  "$FERRY" restore -D "$WORK/img" -v4 -o restore.log 2>"$WORK/restore.err"
  RC=$?
  kill -KILL "$PID"
  cat "$WORK/restore.err"
  [ $RC = 1 ] && grep -q "PID $PID is already in use" "$WORK/restore.err" && exit 0
  exit 104
fi
IMG="$WORK/img"
DUMP_EXTRA=()
if [ -n "${PAGE_SERVER_TLS:-}" ]; then
  IFS=, read -r CA CERT KEY <<<"$PAGE_SERVER_TLS"
  TLS=(--tls --tls-cacert "$CA" --tls-cert "$CERT" --tls-key "$KEY")
  mkdir -p "$WORK/dst"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$FERRY" page-server -D "$WORK/dst" --address 127.0.0.1 --port "$PORT" "${TLS[@]}" -v4 -o page-server.log &
  PS_PID=$!
  wait_for "$WORK/dst/page-server.log" listening "$PS_PID" || { echo "page server did not start"; exit 107; }
  DUMP_EXTRA=(--page-server --address 127.0.0.1 --port "$PORT" "${TLS[@]}")
fi
"$FERRY" dump -t "$PID" -D "$WORK/img" -v4 -o dump.log "${DUMP_EXTRA[@]}" || { echo "dump failed"; exit 102; }
wait "$PID" 2>/dev/null
if [ -n "${PAGE_SERVER_TLS:-}" ]; then
  wait "$PS_PID" || { echo "page server failed:"; cat "$WORK/dst/page-server.log"; exit 108; }
  ls "$WORK/img"/pagemap-*.img >/dev/null 2>&1 && { echo "pagemap written locally despite --page-server"; exit 109; }
  cp "$WORK/img/"*.img "$WORK/dst/"
  IMG="$WORK/dst"
fi
if [ "${MODE:-}" = detached ]; then
  "$FERRY" restore -D "$IMG" -W "$WORK/img" -v4 -o restore.log -d --pidfile restored.pid || { echo "restore failed"; exit 103; }
  [ "$(cat "$WORK/img/restored.pid")" = "$PID" ] || { echo "pidfile: $(cat "$WORK/img/restored.pid")"; exit 105; }
  sleep "${RUN_BEFORE_TERM:-0}"
  kill -TERM "$PID"
  wait_for "$WORK/prog.out" "all intact\|failed" || { echo "no verdict from the program"; exit 106; }
  grep -q "all intact" "$WORK/prog.out"
  exit $?
fi
"$FERRY" restore -D "$IMG" -W "$WORK/img" -v4 -o restore.log ${RESTORE_ARGS:-} &
FERRY_PID=$!
wait_for "$WORK/img/restore.log" "restored and running" "$FERRY_PID" || {
  wait "$FERRY_PID"
  echo "restore failed ($?)"
  exit 103
}
sleep "${RUN_BEFORE_TERM:-0}"
kill -TERM "$PID"
wait "$FERRY_PID"
RC=$?
echo "restored program exited with $RC"
exit $RC
