#!/usr/bin/env bash
# Ferry's main job end to end, on loopback: a workload (a python3 loop that
# keeps checking 64 MiB of its own memory) is dumped with its memory sent to
# `ferry page-server --tls`, the images are put together as on a migration
# destination, and the workload is restored and carries on counting.
#
#   scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
ferry="$(cd "$build" && pwd)/ferry"
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
workload_pid=""
server_pid=""
cleanup() {
  # Only what this script started, by PID.
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$workload_pid" ] && kill "$workload_pid" 2>/dev/null || true
  if [ -f "$work/restored.pid" ]; then kill "$(cat "$work/restored.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "a throwaway PKI (certtool): one CA, one certificate for 127.0.0.1 used by both ends"
mkdir -p "$work/pki"
(
  cd "$work/pki"
  umask 077
  printf 'cn = "Ferry demo CA"\nca\ncert_signing_key\nexpiration_days = 1\n' > ca.tmpl
  printf 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 1\n' > host.tmpl
  certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem
  certtool --generate-self-signed --load-privkey ca-key.pem --template ca.tmpl --outfile ca.pem
  certtool --generate-privkey --key-type=ecdsa --outfile key.pem
  certtool --generate-certificate --load-privkey key.pem --load-ca-certificate ca.pem \
    --load-ca-privkey ca-key.pem --template host.tmpl --outfile cert.pem
) >"$work/pki/certtool.log" 2>&1
tls=(--tls --tls-cacert "$work/pki/ca.pem" --tls-cert "$work/pki/cert.pem" --tls-key "$work/pki/key.pem")

say "the workload: python3 counting, checking 64 MiB of its memory every step"
cat > "$work/workload.py" <<'PY'
import os
os.closerange(3, 1024)  # nothing inherited from whoever ran the demo
import hashlib, sys, time
data = bytearray(os.urandom(1 << 20)) * 64
digest = hashlib.sha256(data).hexdigest()
n = 0
while True:
    ok = hashlib.sha256(data).hexdigest() == digest
    print(f"pid {os.getpid()} count {n} memory {'intact' if ok else 'CHANGED'}", flush=True)
    n += 1
    time.sleep(0.25)
PY
setsid python3 "$work/workload.py" </dev/null >"$work/workload.log" 2>&1 &
workload_pid=$!
disown "$workload_pid"  # no job notice when the dump kills it; bash still reaps it
sleep 2
tail -n 2 "$work/workload.log"

say "destination: ferry page-server --tls on 127.0.0.1"
mkdir -p "$work/source" "$work/destination"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ferry" page-server -D "$work/destination" --address 127.0.0.1 --port "$port" "${tls[@]}" -v3 -o page-server.log &
server_pid=$!
for _ in $(seq 50); do grep -q listening "$work/destination/page-server.log" 2>/dev/null && break; sleep 0.1; done

say "source: ferry dump --page-server --tls (memory over TLS, the other images locally)"
"$ferry" dump -t "$workload_pid" -D "$work/source" --page-server --address 127.0.0.1 --port "$port" "${tls[@]}" \
  --display-stats | tee "$work/dump-stats.txt"
dumped_pid=$workload_pid
workload_pid=""
wait "$server_pid"
server_pid=""
grep -h "received" "$work/destination/page-server.log" | sed 's/^([^)]*) //'

say "destination: the local images copied next to the received pagemap/pages, then ferry restore"
cp -p "$work/source/"*.img "$work/destination/"
ls "$work/destination"
before=$(wc -l < "$work/workload.log")
"$ferry" restore -D "$work/destination" -d --pidfile "$work/restored.pid"
sleep 2
restored=$(cat "$work/restored.pid")
echo "restored as PID $restored (dumped as $dumped_pid)"
tail -n +"$((before + 1))" "$work/workload.log" | head -n 4

say "result"
if [ "$restored" = "$dumped_pid" ] && tail -n 1 "$work/workload.log" | grep -q "memory intact" && kill -0 "$restored"; then
  echo "the workload runs on after restore, same PID, memory intact"
  grep -E "Frozen time|Memory pages written|Memory transfer" "$work/dump-stats.txt"
else
  echo "FAILED: the workload did not carry on after restore" >&2
  exit 1
fi
