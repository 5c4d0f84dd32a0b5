#!/usr/bin/env bash
# Measures the sidecar against plain reverse proxies and against the app directly: saturation
# throughput with wrk, CPU per request, latency at a fixed 1,000 req/s with hack/loadgen (open
# loop), and the sidecar's peak RSS. Prints a Markdown summary (also in $OUT/summary.md).
#
# Targets (hack/plainproxy): "floor" is the plain hop the sidecar is measured against (tuned
# idle pool, Go's default flushing, X-Forwarded-* since the apps behind a sidecar need them);
# "floor+headers" is the floor sending four fixed identity headers; "cheapest" drops
# X-Forwarded-* as well.
#
# Environment: RUNS (interleaved wrk rounds, default 3), WRK_DURATION (default 15s),
# WRK_CONNECTIONS (default 64), PAIRS (adjacent floor/sidecar pairs for the throughput ratio,
# default 20), PAIR_DURATION (default 3s), LAT_RATE (default 1000), LAT_DURATION (default 20s),
# PEERS=1 to run oauth2-proxy and Ory Oathkeeper (built by hack/peers.sh) in the same rounds,
# each checking the same RS256 access token against the core's JWKS. REQUEST=browser (the
# default) sends the headers a browser's fetch sends besides the token; REQUEST=minimal sends
# the token alone. The difference matters: Go keeps a header map of up to 8 entries in one
# small table, so a request of one header stays small through a plain hop, while the 3
# forwarded and 4 identity headers the sidecar adds cross into a larger map in the proxy and
# in the app. A browser's request is past 8 entries before any hop adds anything.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
WRK_DURATION=${WRK_DURATION:-15s}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
PAIRS=${PAIRS:-20}
PAIR_DURATION=${PAIR_DURATION:-3s}
LAT_RATE=${LAT_RATE:-1000}
LAT_DURATION=${LAT_DURATION:-20s}
OUT=${OUT:-$(mktemp -d /tmp/bench-sidecar.XXXXXX)}
mkdir -p "$OUT/bin"

if ! command -v wrk >/dev/null; then
  echo "Installing wrk (Debian package)..." >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi

echo "Building into $OUT/bin..." >&2
for pkg in ./cmd/sidecar ./hack/benchapp ./hack/plainproxy ./hack/benchcore ./hack/loadgen; do
  go build -trimpath -ldflags="-s -w" -o "$OUT/bin/$(basename "$pkg")" "$pkg"
done

APP=127.0.0.1:18080 CORE=127.0.0.1:18081 FLOOR=127.0.0.1:18082 SIDECAR=127.0.0.1:18083 FLOORHDR=127.0.0.1:18084 CHEAPEST=127.0.0.1:18088 ADMIN=127.0.0.1:19090
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$OUT/bin/benchapp" -listen "$APP" 2>"$OUT/app.log" & APP_PID=$!; PIDS+=($APP_PID)
"$OUT/bin/benchcore" -listen "$CORE" -issuer "http://$CORE/auth" -token-out "$OUT/token" 2>"$OUT/core.log" & PIDS+=($!)
"$OUT/bin/plainproxy" -listen "$FLOOR" -upstream "http://$APP" 2>"$OUT/floor.log" & FLOOR_PID=$!; PIDS+=($FLOOR_PID)
"$OUT/bin/plainproxy" -listen "$FLOORHDR" -upstream "http://$APP" -identity-headers 2>"$OUT/floorhdr.log" & FLOORHDR_PID=$!; PIDS+=($FLOORHDR_PID)
"$OUT/bin/plainproxy" -listen "$CHEAPEST" -upstream "http://$APP" -cheapest 2>"$OUT/cheapest.log" & CHEAPEST_PID=$!; PIDS+=($CHEAPEST_PID)
"$OUT/bin/sidecar" -core-url "http://$CORE" -upstream "http://$APP" -listen "$SIDECAR" -admin-listen "$ADMIN" \
  2>"$OUT/sidecar.log" & SIDECAR_PID=$!; PIDS+=($SIDECAR_PID)

TARGETS="app cheapest floor floor+headers sidecar"
declare -A ADDR=([app]=$APP [cheapest]=$CHEAPEST [floor]=$FLOOR [floor+headers]=$FLOORHDR [sidecar]=$SIDECAR)
declare -A PID=([app]="" [cheapest]=$CHEAPEST_PID [floor]=$FLOOR_PID [floor+headers]=$FLOORHDR_PID [sidecar]=$SIDECAR_PID)
if [ "${PEERS:-}" = 1 ]; then
  declare -A PEER
  while read -r name path; do PEER[$name]=$path; done < <(hack/peers.sh)
  O2P=127.0.0.1:18085 OKP=127.0.0.1:18086 OKA=127.0.0.1:18087
  # oauth2-proxy lets a request through on a valid JWT bearer token: RS256 against the core's
  # JWKS, issuer checked; the token's tenant claim stands in for the audience it requires.
  "${PEER[oauth2-proxy]}" --http-address="$O2P" --upstream="http://$APP" --provider=oidc \
    --oidc-issuer-url="http://$CORE/auth" --skip-oidc-discovery --oidc-jwks-url="http://$CORE/auth/jwt/jwks.json" \
    --login-url="http://$CORE/login" --redeem-url="http://$CORE/token" --client-id=public --client-secret=unused \
    --cookie-secret=0123456789abcdef0123456789abcdef --cookie-secure=false --email-domain='*' \
    --skip-jwt-bearer-tokens=true --oidc-audience-claim=tId --oidc-email-claim=sub --insecure-oidc-allow-unverified-email \
    --request-logging=false --auth-logging=false --standard-logging=false 2>"$OUT/oauth2-proxy.log" & O2P_PID=$!; PIDS+=($O2P_PID)
  # Oathkeeper's jwt authenticator with the same JWKS and issuer, allow authorizer, no mutation.
  cat >"$OUT/oathkeeper-rules.json" <<RULES
[{"id":"bench","upstream":{"url":"http://$APP"},"match":{"url":"http://$OKP/<.*>","methods":["GET"]},
  "authenticators":[{"handler":"jwt"}],"authorizer":{"handler":"allow"},"mutators":[{"handler":"noop"}]}]
RULES
  cat >"$OUT/oathkeeper.yaml" <<CONF
serve:
  proxy: {host: 127.0.0.1, port: ${OKP##*:}}
  api: {host: 127.0.0.1, port: ${OKA##*:}}
access_rules:
  repositories: ["file://$OUT/oathkeeper-rules.json"]
authenticators:
  jwt:
    enabled: true
    config:
      jwks_urls: ["http://$CORE/auth/jwt/jwks.json"]
      trusted_issuers: ["http://$CORE/auth"]
      allowed_algorithms: [RS256]
authorizers: {allow: {enabled: true}}
mutators: {noop: {enabled: true}}
log: {level: error}
CONF
  "${PEER[oathkeeper]}" serve --config "$OUT/oathkeeper.yaml" 2>"$OUT/oathkeeper.log" >&2 & OKP_PID=$!; PIDS+=($OKP_PID)
  TARGETS="$TARGETS oauth2-proxy oathkeeper"
  ADDR[oauth2-proxy]=$O2P ADDR[oathkeeper]=$OKP PID[oauth2-proxy]=$O2P_PID PID[oathkeeper]=$OKP_PID
fi

for _ in $(seq 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && [ -s "$OUT/token" ] && break
  sleep 0.1
done
curl -fsS "http://$ADMIN/readyz" >/dev/null
TOKEN=$(cat "$OUT/token")
AUTH="Authorization: Bearer $TOKEN"
# The request's other headers: what a browser's fetch from a single-page app sends.
CLIENT_HEADERS=()
case ${REQUEST:-browser} in
  browser) CLIENT_HEADERS=(
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
    "Accept: application/json, text/plain, */*" "Accept-Language: en-US,en;q=0.9" "Accept-Encoding: gzip, deflate, br, zstd"
    "Referer: http://app.example.com/orders" "Origin: http://app.example.com"
    "Sec-Fetch-Mode: cors" "Sec-Fetch-Site: same-origin" "Sec-Fetch-Dest: empty") ;;
  minimal) ;;
  *) echo "REQUEST=$REQUEST: use browser or minimal" >&2; exit 1 ;;
esac
WRK_HEADERS=(-H "$AUTH"); LOADGEN_HEADERS=(-header "$AUTH")
for h in "${CLIENT_HEADERS[@]}"; do WRK_HEADERS+=(-H "$h"); LOADGEN_HEADERS+=(-header "$h"); done
# Every checking proxy must allow the benchmark's requests and refuse one without a token.
for t in $TARGETS; do
  case $t in app|cheapest|floor|floor+headers) continue ;; esac
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "http://${ADDR[$t]}/bench")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "http://${ADDR[$t]}/bench")" = 200 ] || { echo "$t does not let the token through" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://${ADDR[$t]}/bench")
  case $code in 401|403) ;; *) echo "$t answered $code without a token" >&2; exit 1 ;; esac
done
declare -A RPS PROXY_TICKS APP_TICKS REQS
# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for run in $(seq "$RUNS"); do
  # Alternate the order so that neither proxy always runs right after the other.
  order=$TARGETS; [ $((run % 2)) -eq 0 ] && order=$(echo "$TARGETS" | tr ' ' '\n' | tac | tr '\n' ' ')
  for target in $order; do
    a0=$(ticks "$APP_PID"); p0=0; [ -n "${PID[$target]}" ] && p0=$(ticks "${PID[$target]}")
    r=$(wrk -t2 -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" "${WRK_HEADERS[@]}" "http://${ADDR[$target]}/bench" |
      tee "$OUT/wrk-$target-$run.txt" | awk '/Requests\/sec/ {print $2}')
    a1=$(ticks "$APP_PID"); p1=0; [ -n "${PID[$target]}" ] && p1=$(ticks "${PID[$target]}")
    n=$(awk '/requests in/ {print $1}' "$OUT/wrk-$target-$run.txt")
    RPS[$target]="${RPS[$target]:-} $r"
    PROXY_TICKS[$target]=$(( ${PROXY_TICKS[$target]:-0} + p1 - p0 ))
    APP_TICKS[$target]=$(( ${APP_TICKS[$target]:-0} + a1 - a0 ))
    REQS[$target]=$(( ${REQS[$target]:-0} + n ))
    echo "wrk run $run $target: $r req/s" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# On a shared machine the load of other processes drifts by more than the difference being
# measured; the ratio of two adjacent short runs cancels most of that drift, and the median of
# many such ratios is the robust estimate.
RATIOS=""
for pair in $(seq "$PAIRS"); do
  first=floor second=sidecar; [ $((pair % 2)) -eq 0 ] && first=sidecar second=floor
  declare -A PR=()
  for target in $first $second; do
    PR[$target]=$(wrk -t2 -c"$WRK_CONNECTIONS" -d"$PAIR_DURATION" "${WRK_HEADERS[@]}" "http://${ADDR[$target]}/bench" | awk '/Requests\/sec/ {print $2}')
  done
  RATIOS="$RATIOS $(awk -v s="${PR[sidecar]}" -v p="${PR[floor]}" 'BEGIN {printf "%.3f", s/p}')"
done
echo "paired sidecar/floor ratios:$RATIOS" >&2

declare -A LAT
for target in $(echo "$TARGETS" | tr ' ' '\n' | grep -v '^floor+headers$'); do
  LAT[$target]=$("$OUT/bin/loadgen" -url "http://${ADDR[$target]}/bench" -rate "$LAT_RATE" -duration "$LAT_DURATION" \
    "${LOADGEN_HEADERS[@]}" 2>"$OUT/loadgen-$target.err")
  echo "loadgen $target: ${LAT[$target]}" >&2
done
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SIDECAR_PID/status")
FLOOR_HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$FLOOR_PID/status")
REFUSED=$(curl -fsS "http://$ADMIN/metrics" | awk '/^twofold_sidecar_decisions_total/ && !/allowed/ && !/public/ && !/auth"/ {s+=$2} END {print s+0}')

app_rps=$(echo "${RPS[app]}" | median); floor_rps=$(echo "${RPS[floor]}" | median); side_rps=$(echo "${RPS[sidecar]}" | median)
{
  echo "Request: ${REQUEST:-browser} (the token and ${#CLIENT_HEADERS[@]} other headers)."
  echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | awk '{print $3}'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
  echo
  echo "| target | wrk req/s (median of $RUNS, -t2 -c$WRK_CONNECTIONS, $WRK_DURATION) | runs | p50 ms @ $LAT_RATE/s | p90 ms | p99 ms | max ms |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for t in $TARGETS; do
    r=$(echo "${RPS[$t]}" | median)
    if [ "$t" = "floor+headers" ]; then
      echo "| $t | $r | ${RPS[$t]# } | - | - | - | - |"
      continue
    fi
    echo "| $t | $r | ${RPS[$t]# } | $(echo "${LAT[$t]}" | field service_p50_ms) | $(echo "${LAT[$t]}" | field service_p90_ms) | $(echo "${LAT[$t]}" | field service_p99_ms) | $(echo "${LAT[$t]}" | field service_max_ms) |"
  done
  echo
  echo "CPU time per request during the wrk runs (from /proc/<pid>/stat; less sensitive to other load than req/s):"
  echo
  echo "| target | proxy CPU us/request | app CPU us/request |"
  echo "| --- | --- | --- |"
  hz=$(getconf CLK_TCK)
  for t in $TARGETS; do
    awk -v pt="${PROXY_TICKS[$t]}" -v at="${APP_TICKS[$t]}" -v n="${REQS[$t]}" -v hz="$hz" -v t="$t" \
      'BEGIN {p = (t == "app") ? "-" : sprintf("%.1f", pt * 1e6 / hz / n); printf "| %s | %s | %.1f |\n", t, p, at * 1e6 / hz / n}'
  done
  echo
  hdr_rps=$(echo "${RPS[floor+headers]}" | median); cheap_rps=$(echo "${RPS[cheapest]}" | median)
  cpu() { awk -v t="${PROXY_TICKS[$1]}" -v n="${REQS[$1]}" -v hz="$hz" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}'; }
  awk -v s="$side_rps" -v f="$floor_rps" -v c="$cheap_rps" -v h="$hdr_rps" -v sc="$(cpu sidecar)" -v fc="$(cpu floor)" -v cc="$(cpu cheapest)" -v hc="$(cpu floor+headers)" 'BEGIN {
    printf "Against the floor (tuned pool, default flushing, X-Forwarded-*): sidecar throughput %.1f%% (target >= 98%%), proxy CPU per request %+.1f us (target <= +3 us).\n", 100*s/f, sc-fc
    printf "The identity headers alone (floor+headers against the floor): throughput %.1f%%, proxy CPU per request %+.1f us; the sidecar against floor+headers: %.1f%%, %+.1f us.\n", 100*h/f, hc-fc, 100*s/h, sc-hc
    printf "Against the cheapest hop (no X-Forwarded-*): sidecar throughput %.1f%%, proxy CPU per request %+.1f us; the floor %.1f%%, %+.1f us.\n", 100*s/c, sc-cc, 100*f/c, fc-cc }'
  echo "$RATIOS" | tr ' ' '\n' | grep -v '^$' | sort -n | awk -v n="$PAIRS" -v d="$PAIR_DURATION" \
    '{a[NR]=$1} END {printf "Paired runs (%d adjacent floor/sidecar pairs of %s, order alternating): sidecar/floor median %.1f%%, quartiles %.1f%% to %.1f%%, range %.1f%% to %.1f%%.\n", n, d, 100*a[int((NR+1)/2)], 100*a[int((NR+3)/4)], 100*a[int((3*NR+1)/4)], 100*a[1], 100*a[NR]}'
  for q in p50 p99; do
    a=$(echo "${LAT[app]}" | field "service_${q}_ms"); s=$(echo "${LAT[sidecar]}" | field "service_${q}_ms"); f=$(echo "${LAT[floor]}" | field "service_${q}_ms"); c=$(echo "${LAT[cheapest]}" | field "service_${q}_ms")
    awk -v a="$a" -v s="$s" -v f="$f" -v c="$c" -v q="$q" 'BEGIN {printf "Added %s over straight-to-app: sidecar %.3f ms, floor %.3f ms, cheapest hop %.3f ms.\n", q, s-a, f-a, c-a}'
  done
  awk -v k="$HWM_KB" -v pk="$FLOOR_HWM_KB" 'BEGIN {printf "Sidecar peak RSS (VmHWM) after the runs: %.1f MiB (floor %.1f MiB; target <= 20 MiB).\n", k/1024, pk/1024}'
  for t in oauth2-proxy oathkeeper; do
    [ -n "${PID[$t]:-}" ] || continue
    awk -v k="$(awk '/VmHWM/ {print $2}' "/proc/${PID[$t]}/status")" -v t="$t" -v r="$(echo "${RPS[$t]}" | median)" -v p="$floor_rps" \
      'BEGIN {printf "%s: %.2fx the floor'"'"'s throughput, peak RSS %.1f MiB.\n", t, r/p, k/1024}'
  done
  echo "Sidecar binary: $(du -k "$OUT/bin/sidecar" | awk '{printf "%.1f MiB", $1/1024}') (-trimpath -ldflags=\"-s -w\")."
  echo "Requests the sidecar refused: $REFUSED (1 is the script's own check that a request without a token is refused)."
} | tee "$OUT/summary.md"
