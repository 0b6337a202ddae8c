#!/usr/bin/env bash
# Interoperability of the primus provider with other PKCS#11 users of the
# same token and with other programs:
#   - keys generated through the provider sign through libp11's pkcs11
#     engine and through pkcs11-tool, and verify;
#   - keys made by pkcs11-tool are used by the provider;
#   - URI PEM files: the provider's encoding is the canonical DER of the
#     pkcs11-provider format, and a file in pkcs11-provider's style (its
#     URI attributes) is read;
#   - Python's ssl and curl use a URI PEM key file through OpenSSL.
# (The token holds no Ed25519 key: libp11 0.4.12 cannot enumerate a token
# that has one.)
source "$(dirname "${BASH_SOURCE[0]}")/provider_lib.sh"

PIN=13572468
T=INTEROP
token_setup "$WORK/hsm"
token_create "$T" "$PIN"
token_pin_file "$WORK/pin" "$PIN"
prov_conf "$CONF" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/pin"
cd "$WORK" || exit 1
echo "interop data $RANDOM" >data
plain dgst -sha256 -binary -out data.sha256 data
P11TOOL=(pkcs11-tool --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$T")
ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
u() { echo "pkcs11:token=$T;object=$1"; }

# ---- provider-generated keys, used by libp11 and pkcs11-tool -------------------------
ossl_ok "generate RSA" genpkey -propquery "?provider=primus" -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -pkeyopt "pkcs11_uri:pkcs11:token=$T;object=prov-rsa;id=%a1" \
    -out prov-rsa.pem
ossl_ok "generate EC" genpkey -propquery "?provider=primus" -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -pkeyopt "pkcs11_uri:pkcs11:token=$T;object=prov-ec;id=%a2" \
    -out prov-ec.pem
for k in prov-rsa prov-ec; do
    ossl_ok "public half of $k" pkey -in "$(u "$k")" -pubout -out "$k.pub"
done

if [ -f "$ENGINE_SO" ]; then
    for k in prov-rsa prov-ec; do
        run env OPENSSL_CONF=/dev/null PKCS11_MODULE_PATH="$PRIMUS_SOFTHSM_MODULE" openssl dgst \
            -sha256 -engine pkcs11 -keyform engine \
            -sign "pkcs11:token=$T;object=$k;type=private;pin-value=$PIN" -out "$k.engine.sig" data
        expect_status 0
        plain_ok "verify the engine's $k signature" dgst -sha256 -verify "$k.pub" \
            -signature "$k.engine.sig" data
        expect_out "Verified OK"
    done
else
    echo "note: $ENGINE_SO missing, libp11 engine checks skipped" >&2
fi

run "${P11TOOL[@]}" --login --pin "$PIN" --sign -m SHA256-RSA-PKCS --id a1 -i data -o tool-rsa.sig
expect_status 0
plain_ok "verify pkcs11-tool's RSA signature" dgst -sha256 -verify prov-rsa.pub \
    -signature tool-rsa.sig data
run "${P11TOOL[@]}" --login --pin "$PIN" --sign -m ECDSA --signature-format openssl --id a2 \
    -i data.sha256 -o tool-ec.sig
expect_status 0
plain_ok "verify pkcs11-tool's ECDSA signature" pkeyutl -verify -pubin -inkey prov-ec.pub \
    -in data.sha256 -sigfile tool-ec.sig

# ---- pkcs11-tool's keys, used by the provider --------------------------------------------
token_keygen "$T" EC:secp384r1 b1 tool-ec "$PIN"
token_keygen "$T" rsa:2048 b2 tool-rsa "$PIN"
"${P11TOOL[@]}" --read-object --type pubkey --id b2 -o tool-rsa.der >/dev/null 2>&1 \
    || fail "read back tool-rsa"
plain pkey -pubin -inform DER -in tool-rsa.der -out tool-rsa.ref.pem
ossl_ok "pubout tool-rsa" pkey -in "$(u tool-rsa)" -pubout -out tool-rsa.pub
same_file tool-rsa.pub tool-rsa.ref.pem "public key of a pkcs11-tool key"
ossl_ok "sign with tool-rsa" dgst -sha384 -sign "$(u tool-rsa)" -out tool-rsa.prov.sig data
plain_ok "verify tool-rsa" dgst -sha384 -verify tool-rsa.ref.pem -signature tool-rsa.prov.sig data
ossl_ok "sign with tool-ec" dgst -sha384 -sign "$(u tool-ec)" -out tool-ec.prov.sig data
ossl_ok "pubout tool-ec" pkey -in "$(u tool-ec)" -pubout -out tool-ec.pub
plain_ok "verify tool-ec" dgst -sha384 -verify tool-ec.pub -signature tool-ec.prov.sig data
# and pkcs11-tool verifies the provider's signature with its own public key object
run "${P11TOOL[@]}" --verify -m SHA384-RSA-PKCS --id b2 -i data --signature-file tool-rsa.prov.sig
expect_status 0
expect_out "Signature is valid"

# ---- URI PEM files --------------------------------------------------------------------------
# Our encoding is the canonical DER that asn1parse builds for the format.
uri=$(plain asn1parse -in prov-ec.pem | sed -n 's/.*UTF8STRING *://p')
[ -n "$uri" ] && pass || fail "no URI in prov-ec.pem"
printf 'asn1=SEQUENCE:seq\n[seq]\ndesc=VISIBLESTRING:PKCS\\#11 Provider URI v1.0\nuri=UTF8:%s\n' \
    "$uri" >uri.genconf
plain_ok "canonical DER" asn1parse -genconf uri.genconf -noout -out canonical.der
plain base64 -d -in <(sed '1d;$d' prov-ec.pem) -out ours.der 2>/dev/null \
    || sed '1d;$d' prov-ec.pem | base64 -d >ours.der
same_file ours.der canonical.der "URI PEM encoding"

# A file in pkcs11-provider's style: its URIs name model, manufacturer,
# serial and token, with %-escapes.
serial=$("${P11TOOL[@]}" --list-token-slots 2>/dev/null | sed -n 's/^ *serial num *: *//p' | head -n1)
[ -n "$serial" ] && pass || fail "no token serial from pkcs11-tool"
style="pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=$serial;token=$T;id=%B2;object=tool-rsa;type=private"
printf 'asn1=SEQUENCE:seq\n[seq]\ndesc=VISIBLESTRING:PKCS\\#11 Provider URI v1.0\nuri=UTF8:%s\n' \
    "$style" >style.genconf
plain_ok "pkcs11-provider style DER" asn1parse -genconf style.genconf -noout -out style.der
{
    echo "-----BEGIN PKCS#11 PROVIDER URI-----"
    base64 -w 64 style.der
    echo "-----END PKCS#11 PROVIDER URI-----"
} >style.pem
ossl_ok "read a pkcs11-provider style file" pkey -in style.pem -pubout -out style.pub
same_file style.pub tool-rsa.ref.pem "key named by a pkcs11-provider style file"
ossl_ok "sign with it" dgst -sha256 -sign style.pem -out style.sig data
plain_ok "verify" dgst -sha256 -verify tool-rsa.ref.pem -signature style.sig data

# ---- other programs loading a URI PEM key file through OpenSSL --------------------------------
plain_ok "CA" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -subj "/CN=interop CA" -days 2 -out ca.crt
printf '[srv]\nsubjectAltName = IP:127.0.0.1\n[cli]\nextendedKeyUsage = clientAuth\n' >ext.cnf
ossl_ok "server CSR" req -new -key prov-ec.pem -subj "/CN=prov-ec" -out prov-ec.csr
plain_ok "server certificate" x509 -req -in prov-ec.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days 2 -extfile ext.cnf -extensions srv -out prov-ec.crt
ossl_ok "client CSR" req -new -key prov-rsa.pem -subj "/CN=prov-rsa" -out prov-rsa.csr
plain_ok "client certificate" x509 -req -in prov-rsa.csr -CA ca.crt -CAkey ca.key \
    -CAcreateserial -days 2 -extfile ext.cnf -extensions cli -out prov-rsa.crt

if python3 -c "import ssl" 2>/dev/null; then
    port=$(free_port)
    cat >server.py <<EOF
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("prov-ec.crt", keyfile="prov-ec.pem")
with socket.create_server(("127.0.0.1", $port)) as s:
    conn, _ = s.accept()
    with ctx.wrap_socket(conn, server_side=True) as t:
        t.recv(100)
        t.sendall(b"HTTP/1.0 200 ok\r\n\r\nhello from python\n")
        try:
            t.unwrap()
        except (ssl.SSLError, OSError):
            pass
EOF
    start_bg python-server with_sanitizer_runtime env OPENSSL_CONF="$CONF" python3 server.py
    pypid=$BG_PID
    wait_port "$port"
    run ossl s_client -connect "127.0.0.1:$port" -CAfile ca.crt -verify_return_error -brief \
        -ign_eof < <(printf 'GET / HTTP/1.0\r\n\r\n')
    expect_status 0
    expect_err "Verification: OK"
    expect_out "hello from python"
    wait "$pypid" && pass || { ERR=$(cat "$WORK/python-server.log"); fail "python server failed"; }
fi

# (curl deadlocks in setlocale at start-up with the ASan runtime preloaded)
if command -v curl >/dev/null && [ -z "${PRIMUS_ASAN_RUNTIME:-}" ]; then
    port=$(free_port)
    start_bg curl-server ossl s_server -accept "127.0.0.1:$port" -naccept 1 -www \
        -cert prov-ec.crt -key "$(u prov-ec)" -CAfile ca.crt -Verify 1 -verify_return_error
    spid=$BG_PID
    wait_port "$port"
    run timeout 60 env OPENSSL_CONF="$CONF" curl -sS --cacert ca.crt \
        --cert prov-rsa.crt --key prov-rsa.pem "https://127.0.0.1:$port/"
    expect_status 0
    expect_out "prov-rsa"
    wait "$spid" && pass || { ERR=$(cat "$WORK/curl-server.log"); fail "s_server for curl failed"; }
fi

finish
