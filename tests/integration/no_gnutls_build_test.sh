#!/usr/bin/env bash
# Builds ferry with NO_GNUTLS=1 and checks that TLS is really left out.
set -euo pipefail
src=$1
out=$2
rm -rf "$out"
NO_GNUTLS=1 cmake -S "$src" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_TESTS=OFF -DFERRY_BENCH=OFF >"$out.log" 2>&1 \
  || { cat "$out.log"; exit 1; }
grep -q "building without TLS support" "$out.log" || { echo "configure did not report the NO_GNUTLS build"; cat "$out.log"; exit 1; }
ninja -C "$out" ferry >>"$out.log" 2>&1 || { tail -50 "$out.log"; exit 1; }
if ldd "$out/ferry" | grep -q gnutls; then
  echo "FAIL: the NO_GNUTLS binary links GnuTLS"; exit 1
fi
version=$("$out/ferry" --version)
echo "$version"
grep -q "TLS: not built in" <<<"$version" || { echo "FAIL: --version does not say TLS is absent"; exit 1; }
for cmd in page-server dump lazy-pages; do
  if "$out/ferry" $cmd --help >/dev/null 2>&1; then
    set +e
    extra=""
    [ "$cmd" = dump ] && extra="-t 1"
    msg=$("$out/ferry" $cmd --tls $extra --port 1 2>&1); rc=$?
    set -e
    [ "$rc" -eq 1 ] || { echo "FAIL: $cmd --tls exited $rc"; exit 1; }
    grep -q "built without TLS support" <<<"$msg" || { echo "FAIL: $cmd --tls said: $msg"; exit 1; }
    echo "$cmd --tls: $msg"
  fi
done
rm -rf "$out" "$out.log"
echo "NO_GNUTLS build OK"
