#!/usr/bin/env bash
# tlsbench.sh: full TLS 1.3 handshakes per second (no resumption) against a
# server whose key is in the HSM (through the primus provider) beside the
# same server with the same key in a PEM file.
#
# The key material is identical: each key is generated in software, written
# to a PEM file, and imported into a throwaway SoftHSM token with
# `pkcs11-tool --write-object` (private and public half).  Servers:
#   s_server  `openssl s_server -key pkcs11:...` (HSM, OPENSSL_CONF loads
#             primus) / `-key key.pem` with OpenSSL's default configuration
#             (PEM) / `-key key.pem` with primus loaded but unused (PEM+prov:
#             what merely loading the provider costs)
#   nginx     Debian's nginx, worker_processes 2, on 127.0.0.1 with free ports;
#             HSM: ssl_certificate_key is the URI PEM file made by
#             `primusctl uri-pem`, OPENSSL_CONF in the master's environment and
#             `env SOFTHSM2_CONF;` for the workers / PEM: the key file
# Every server is started once and checked once with `openssl s_client`
# (certificate verified, TLS 1.3); then the contenders of one algorithm are
# measured in turn with bench/tlsclient (order rotated every round) and the
# medians compared.
#
#   bench/tlsbench.sh [--quick] [--seconds S] [--rounds R] [--threads N]
#                     [--algs "rsa2048 p256"] [--no-nginx] [--csv FILE]
# PRIMUS_BUILD selects the build tree (default: build/ of this checkout).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER=2
ROUNDS=5
THREADS=2
ALGS="rsa2048 p256"
NGINX=1
CSV=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) SECONDS_PER=0.5 ROUNDS=1 ;;
    --seconds) SECONDS_PER=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --algs) ALGS=$2; shift ;;
    --no-nginx) NGINX=0 ;;
    --csv) CSV=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "tlsbench: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

source "$SRC/bench/lib.sh"
CLIENT=$BUILD/bench/tlsclient
[ -x "$CLIENT" ] || { echo "tlsbench: $CLIENT is missing: build the tlsclient target" >&2; exit 1; }
if [ "$NGINX" = 1 ] && ! command -v nginx >/dev/null; then
    echo "tlsbench: nginx not installed; measuring s_server only" >&2
    NGINX=0
fi
bench_init tlsbench
cd "$WORK" || exit 1
declare -A PORT PGID
kid=1
for alg in $ALGS; do
    case $alg in rsa2048|p256) ;; *) echo "tlsbench: --algs: rsa2048, p256" >&2; exit 2 ;; esac
    bench_key "$alg" "0$kid"
    kid=$((kid + 1))
done

# s_server: one per algorithm and kind.
sserver() { # NAME CONF KEY CERT
    local port
    port=$(free_port)
    bench_start "$1" "OPENSSL_CONF=$2" "SOFTHSM2_CONF=$SOFTHSM2_CONF" -- \
        openssl s_server -accept "127.0.0.1:$port" -tls1_3 -num_tickets 0 -quiet \
        -cert "$4" -key "$3"
    PORT[$1]=$port
    PGID[$1]=${BENCH_GROUPS[-1]}
}
for alg in $ALGS; do
    sserver "$alg/s_server/HSM" "$CONF" "$(bench_uri "$alg")" "$alg.crt"
    sserver "$alg/s_server/PEM" /dev/null "$alg.key" "$alg.crt"
    sserver "$alg/s_server/PEM+prov" "$CONF" "$alg.key" "$alg.crt"
done

# nginx: one instance with the HSM keys, one with the PEM keys.
nginx_conf() { # KIND KEYSUFFIX
    local kind=$1 suffix=$2 alg port
    mkdir -p "$WORK/nginx-$kind/logs"
    {
        echo "worker_processes 2;"
        echo "daemon off;"
        echo "master_process on;"
        [ "$(id -u)" = 0 ] && echo "user root;"
        echo "pid $WORK/nginx-$kind/nginx.pid;"
        echo "error_log $WORK/nginx-$kind/error.log warn;"
        echo "env SOFTHSM2_CONF;"
        echo "events { worker_connections 1024; }"
        echo "http {"
        echo "  access_log off;"
        echo "  client_body_temp_path $WORK/nginx-$kind/body;"
        echo "  proxy_temp_path $WORK/nginx-$kind/proxy;"
        echo "  fastcgi_temp_path $WORK/nginx-$kind/fastcgi;"
        echo "  uwsgi_temp_path $WORK/nginx-$kind/uwsgi;"
        echo "  scgi_temp_path $WORK/nginx-$kind/scgi;"
        echo "  ssl_protocols TLSv1.3;"
        echo "  ssl_session_tickets off;"
        echo "  ssl_session_cache off;"
        for alg in $ALGS; do
            port=$(free_port)
            PORT[$alg/nginx/$kind]=$port
            echo "  server {"
            echo "    listen 127.0.0.1:$port ssl;"
            echo "    ssl_certificate $WORK/$alg.crt;"
            echo "    ssl_certificate_key $WORK/$alg$suffix;"
            echo "    location / { return 200 \"ok\\n\"; }"
            echo "  }"
        done
        echo "}"
    } >"$WORK/nginx-$kind/nginx.conf"
}
if [ "$NGINX" = 1 ]; then
    nginx_conf HSM .uri.pem
    nginx_conf PEM .key
    bench_start nginx-HSM "OPENSSL_CONF=$CONF" "SOFTHSM2_CONF=$SOFTHSM2_CONF" -- \
        nginx -p "$WORK/nginx-HSM" -c "$WORK/nginx-HSM/nginx.conf" -e "$WORK/nginx-HSM/error.log"
    PG_NGINX_HSM=${BENCH_GROUPS[-1]}
    bench_start nginx-PEM "OPENSSL_CONF=/dev/null" -- \
        nginx -p "$WORK/nginx-PEM" -c "$WORK/nginx-PEM/nginx.conf" -e "$WORK/nginx-PEM/error.log"
    for alg in $ALGS; do
        PGID[$alg/nginx/HSM]=$PG_NGINX_HSM
        PGID[$alg/nginx/PEM]=${BENCH_GROUPS[-1]}
    done
fi

# Check every server once: TLS 1.3, certificate verified against the
# self-signed certificate (so the handshake signature was checked).
SERVERS=()
for alg in $ALGS; do
    SERVERS+=("$alg/s_server/HSM" "$alg/s_server/PEM" "$alg/s_server/PEM+prov")
    [ "$NGINX" = 1 ] && SERVERS+=("$alg/nginx/HSM" "$alg/nginx/PEM")
done
status=0
for s in "${SERVERS[@]}"; do
    alg=${s%%/*}
    port=${PORT[$s]}
    if ! wait_port "$port"; then
        echo "tlsbench: $s does not listen on 127.0.0.1:$port" >&2
        cat "$WORK"/*.log "$WORK"/nginx-*/error.log 2>/dev/null | tail -20 >&2
        exit 1
    fi
    out=$(plain s_client -connect "127.0.0.1:$port" -tls1_3 -CAfile "$alg.crt" \
        -verify_return_error -brief </dev/null 2>&1)
    if grep -q "Verification: OK" <<<"$out" && grep -q "Protocol version: TLSv1.3" <<<"$out"; then
        printf 'check %-22s ok (%s)\n' "$s" "$(grep -m1 'Signature type' <<<"$out" | sed 's/.*: //')"
    else
        echo "tlsbench: check of $s failed:" >&2
        echo "$out" | tail -5 >&2
        status=1
    fi
done
[ "$status" = 0 ] || exit 1

# CPU time (clock ticks, user + system) of every process in a process group:
# the server's own work, whatever else runs on the machine.
pg_ticks() {
    local f total=0 rest
    for f in /proc/[0-9]*/stat; do
        read -r rest 2>/dev/null <"$f" || continue
        rest=${rest##*) } # fields after "pid (comm) ": state ppid pgrp ... utime(12) stime(13)
        set -- $rest
        [ "${3:-}" = "$PG_WANT" ] && total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

stats() { # KIND: median rate, median server µs per handshake, spread of the rates
    local k=$1
    tr ' ' '\n' <<<"${RATES[$k]}" | grep . | median
    tr ' ' '\n' <<<"${CPUS[$k]}" | grep . | median
    tr ' ' '\n' <<<"${RATES[$k]}" | grep . | sort -g |
        awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; if (m>0) print (v[NR]-v[1])/m; else print 0}'
}

echo
echo "TLS 1.3 full handshakes per second: median of $ROUNDS round(s) of ${SECONDS_PER}s," \
    "tlsclient with $THREADS threads, no resumption (nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "us/hs: CPU time (user + system) of the server's processes per handshake, median"
printf '%-8s %-9s %9s %9s %9s %8s %10s %10s %10s %7s\n' alg server HSM PEM PEM+prov HSM/PEM \
    "HSM us/hs" "PEM us/hs" "P+p us/hs" spread
[ -n "$CSV" ] && echo "alg,server,kind,round,rate,server_cpu_us_per_handshake" >"$CSV"
for alg in $ALGS; do
    for srv in s_server nginx; do
        [ "$srv" = nginx ] && [ "$NGINX" = 0 ] && continue
        kinds=(HSM PEM)
        [ "$srv" = s_server ] && kinds+=(PEM+prov)
        declare -A RATES=() CPUS=()
        for r in $(seq 1 "$ROUNDS"); do
            n=${#kinds[@]}
            for i in $(seq 0 $((n - 1))); do
                k=${kinds[$(((i + r) % n))]}
                PG_WANT=${PGID[$alg/$srv/$k]}
                t0=$(pg_ticks)
                line=$("$CLIENT" --port "${PORT[$alg/$srv/$k]}" --seconds "$SECONDS_PER" \
                    --threads "$THREADS" 2>"$WORK/client.err")
                t1=$(pg_ticks)
                count=$(awk '{print $2}' <<<"$line")
                rate=$(awk '{print $6}' <<<"$line")
                errs=$(awk '{print $8}' <<<"$line")
                if [ -z "$rate" ] || [ "${errs:-1}" != 0 ]; then
                    echo "tlsbench: $alg $srv $k: $line $(cat "$WORK/client.err")" >&2
                fi
                cpu=$(awk -v d=$((t1 - t0)) -v n="${count:-0}" -v hz="$CLK_TCK" \
                    'BEGIN {print (n > 0) ? d * 1e6 / hz / n : 0}')
                RATES[$k]+="${rate:-0} "
                CPUS[$k]+="$cpu "
                [ -n "$CSV" ] && echo "$alg,$srv,$k,$r,${rate:-0},$cpu" >>"$CSV"
            done
        done
        mapfile -t H < <(stats HSM)
        mapfile -t P < <(stats PEM)
        PP=(- - 0)
        [ "$srv" = s_server ] && mapfile -t PP < <(stats PEM+prov)
        spread=$(printf '%s\n' "${H[2]}" "${P[2]}" | sort -g | tail -1)
        printf '%-8s %-9s %9.0f %9.0f %9s %8.3f %10.0f %10.0f %10s %6.0f%%\n' "$alg" "$srv" \
            "${H[0]}" "${P[0]}" "$( [ "${PP[0]}" = - ] && echo - || printf '%.0f' "${PP[0]}")" \
            "$(awk -v a="${H[0]}" -v b="${P[0]}" 'BEGIN {print (b > 0) ? a / b : 0}')" \
            "${H[1]}" "${P[1]}" "$( [ "${PP[1]}" = - ] && echo - || printf '%.0f' "${PP[1]}")" \
            "$(awk -v s="$spread" 'BEGIN {print s * 100}')"
        unset RATES CPUS
    done
done
echo "(HSM/PEM: ratio of the median rates; spread: (max - min) / median of the HSM or PEM rates, the larger)"

# The servers must still be alive and quiet.
for g in "${BENCH_GROUPS[@]}"; do
    kill -0 "$g" 2>/dev/null || { echo "tlsbench: a server died during the run:" >&2; status=1; }
done
if [ "$NGINX" = 1 ]; then
    n=$(grep -c -E '\[(alert|emerg|crit)\]' "$WORK"/nginx-*/error.log 2>/dev/null | awk -F: '{s+=$NF} END {print s+0}')
    [ "$n" = 0 ] || { echo "tlsbench: nginx logged $n alert/crit/emerg lines:" >&2; grep -h -E '\[(alert|emerg|crit)\]' "$WORK"/nginx-*/error.log | head -5 >&2; }
fi
exit $status
