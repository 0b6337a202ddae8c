#!/usr/bin/env bash
# The openssl command line with keys in the HSM, named directly by pkcs11: URIs.
#
#   bash examples/openssl/run.sh          (STAY=1 to try s_server by hand, KEEP=1 to keep files)
#
# With OPENSSL_CONF pointing at an openssl.cnf that activates the provider
# (the sample conf/openssl-primus.cnf, with this machine's paths), every
# openssl command that takes a private key (-key, -inkey, -sign, -in) accepts
# a pkcs11: URI.  Makes a throwaway SoftHSM2 token (or uses RSA_KEY_URI,
# EC_KEY_URI, PIN_FILE), then: public keys, a signature checked without the
# provider, a self-signed certificate, and a TLS server (`s_server -key
# pkcs11:...`) on 127.0.0.1 reached by `s_client` over TLS 1.3 and 1.2.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ex_begin openssl
ex_keys
ex_openssl_conf
cd "$WORK" || exit 1
FAILED=0
check() {
    if "$@"; then note "ok"; else note "FAILED"; FAILED=$((FAILED + 1)); fi
}

say "the provider is loaded"
show openssl list -providers | sed 's/^/    /'

say "public keys, read from the HSM"
show openssl pkey -in "$RSA_KEY_URI" -pubout -out rsa.pub
show openssl pkey -in "$EC_KEY_URI" -pubout -out ec.pub
sed 's/^/    /' ec.pub

say "sign in the HSM, verify in software (OpenSSL without the provider)"
echo "data to sign" >data
for k in rsa ec; do
    uri=RSA_KEY_URI
    [ "$k" = ec ] && uri=EC_KEY_URI
    show openssl dgst -sha256 -sign "${!uri}" -out "$k.sig" data
    check plain_openssl dgst -sha256 -verify "$k.pub" -signature "$k.sig" data
done

say "a self-signed certificate for the EC key (signed in the HSM)"
show openssl req -new -x509 -key "$EC_KEY_URI" -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1" -days 2 -out ec.crt
check plain_openssl verify -CAfile ec.crt ec.crt
ex_ca
ex_cert rsa-server "$RSA_KEY_URI" server

say "a TLS server whose key is in the HSM: -key takes the URI"
PORT=$(ex_free_port)
note "\$ openssl s_server -accept 127.0.0.1:$PORT -cert ec.crt -key '$EC_KEY_URI' -www"
ex_bg "$WORK/s_server.log" openssl s_server -accept "127.0.0.1:$PORT" -cert ec.crt \
    -key "$EC_KEY_URI" -cert_chain ca.crt -dcert rsa-server.crt -dkey "$RSA_KEY_URI" -www
SERVER=$EX_PID
ex_wait_port "$PORT"
note "(it also carries the RSA certificate and key: -dcert rsa-server.crt -dkey '$RSA_KEY_URI')"
for args in "-tls1_3 -sigalgs ECDSA+SHA256 -CAfile ec.crt" "-tls1_2 -sigalgs ECDSA+SHA256 -CAfile ec.crt" \
            "-tls1_3 -sigalgs rsa_pss_rsae_sha256 -CAfile ca.crt" "-tls1_2 -sigalgs RSA+SHA256 -CAfile ca.crt"; do
    # shellcheck disable=SC2086
    note "\$ openssl s_client -connect 127.0.0.1:$PORT $args -verify_return_error -brief"
    # shellcheck disable=SC2086
    if printf 'GET / HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null openssl s_client \
            -connect "127.0.0.1:$PORT" $args -verify_return_error -verify_ip 127.0.0.1 -brief \
            -ign_eof >"client.out" 2>&1 && grep -q 'Verification: OK' client.out &&
            grep -q '200 ok' client.out; then
        grep -E 'Protocol version|Signature type|Peer certificate|Verification' client.out | sed 's/^/      /'
    else
        note "FAILED:"
        sed 's/^/      /' client.out
        FAILED=$((FAILED + 1))
    fi
done
ex_stay "try: openssl s_client -connect 127.0.0.1:$PORT -CAfile $WORK/ec.crt"
ex_stop "$SERVER"

[ "$FAILED" = 0 ] || die "$FAILED check(s) failed"
say "openssl example: keys in the HSM used by pkcs11: URI"
