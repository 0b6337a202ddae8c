#!/usr/bin/env bash
# The primus provider through the real openssl binary against a SoftHSM token:
# activation (config file and command line), public keys byte for byte equal
# to the default provider's, signatures (RSA PKCS#1 v1.5, RSA-PSS, ECDSA on
# P-256/P-384/P-521, Ed25519) that the default provider verifies,
# certificates and CMS, decryption (PKCS#1, OAEP SHA-1), ECDH, the URI PEM
# file, the store (listing, alias, certificates), key generation in the HSM.
# Every openssl command must exit 0: no crash at exit.
source "$(dirname "${BASH_SOURCE[0]}")/provider_lib.sh"

PIN=pin-Ossl-3579
T=PROVTOK
token_setup "$WORK/hsm"
token_create "$T" "$PIN"
token_pin_file "$WORK/pin" "$PIN"
prov_conf "$CONF" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/pin"
cd "$WORK" || exit 1
echo "data to be signed, $RANDOM" >data
P11TOOL=(pkcs11-tool --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$T")
u() { echo "pkcs11:token=$T;object=$1"; }

# ---- keys -------------------------------------------------------------------
# Made in the token by pkcs11-tool: reference public keys read back from it.
token_keygen "$T" rsa:2048 01 rsa2048 "$PIN"
token_keygen "$T" EC:prime256v1 02 p256 "$PIN"
token_keygen "$T" EC:secp384r1 07 p384gen "$PIN"
for pair in 01:rsa2048 02:p256; do
    id=${pair%%:*} name=${pair#*:}
    "${P11TOOL[@]}" --read-object --type pubkey --id "$id" -o "$name.der" >/dev/null 2>&1 \
        || fail "pkcs11-tool could not read back $name"
    plain_ok "reference $name" pkey -pubin -inform DER -in "$name.der" -out "$name.ref.pem"
done
# Made in software and imported: the reference is the software key itself.
plain_ok "software RSA-3072" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa3072.key
plain_ok "software RSA-4096" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out rsa4096.key
plain_ok "software P-384" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key
plain_ok "software P-521" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.key
for pair in 03:rsa3072 04:rsa4096 05:p384 06:p521; do
    id=${pair%%:*} name=${pair#*:}
    plain_ok "public $name" pkey -in "$name.key" -pubout -out "$name.ref.pem"
    OPENSSL_CONF=/dev/null "${P11TOOL[@]}" --login --pin "$PIN" --write-object "$name.key" \
        --type privkey --id "$id" --label "$name" >/dev/null 2>&1 || fail "import $name"
    OPENSSL_CONF=/dev/null "${P11TOOL[@]}" --login --pin "$PIN" --write-object "$name.ref.pem" \
        --type pubkey --id "$id" --label "$name" >/dev/null 2>&1 || fail "import $name.pub"
done

# ---- activation ----------------------------------------------------------------
run ossl list -providers -verbose
expect_status 0
expect_out "primus"
expect_out "name: Primus HSM PKCS#11 provider"
expect_out "version: 0.1.0"
expect_out "build info: primus-provider 0.1.0"
expect_out "status: active"
run ossl list -store-loaders
expect_status 0
expect_out "pkcs11"

# The HSM RNG is offered only when asked for (primus-rand = yes).
run ossl list -random-generators
expect_status 0
expect_no_out "PRIMUS-HSM-RNG"
prov_conf rand.cnf "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" "primus-rand = yes"
run with_sanitizer_runtime env OPENSSL_CONF=rand.cnf openssl list -random-generators
expect_status 0
expect_out "PRIMUS-HSM-RNG"
# ... and gives the token's random bytes (EVP_RAND used directly, not as the
# seed source of OpenSSL's DRBGs: SoftHSM itself draws from those).
if python3 -c "import ctypes" 2>/dev/null; then
    prov_conf rand2.cnf "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
        "pkcs11-module-token-pin = file:$WORK/pin" "primus-rand = yes" \
        "primus-rand-uri = pkcs11:token=$T"
    cat >rand.py <<'EOF'
import ctypes, sys
c = ctypes.CDLL("libcrypto.so.3")
vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
c.EVP_RAND_fetch.restype = vp
c.EVP_RAND_fetch.argtypes = [vp, cp, cp]
c.EVP_RAND_CTX_new.restype = vp
c.EVP_RAND_CTX_new.argtypes = [vp, vp]
c.EVP_RAND_instantiate.argtypes = [vp, ctypes.c_uint, ctypes.c_int, cp, sz, vp]
c.EVP_RAND_generate.argtypes = [vp, cp, sz, ctypes.c_uint, ctypes.c_int, cp, sz]
c.EVP_RAND_CTX_free.argtypes = [vp]
c.EVP_RAND_free.argtypes = [vp]
c.OPENSSL_init_crypto(ctypes.c_uint64(0x40), None)  # OPENSSL_INIT_LOAD_CONFIG
r = c.EVP_RAND_fetch(None, b"PRIMUS-HSM-RNG", b"provider=primus")
ctx = c.EVP_RAND_CTX_new(r, None) if r else None
if not ctx or c.EVP_RAND_instantiate(ctx, 256, 0, None, 0, None) != 1:
    sys.exit("no PRIMUS-HSM-RNG")
buf = ctypes.create_string_buffer(6000)
if c.EVP_RAND_generate(ctx, buf, 6000, 256, 0, None, 0) != 1:
    sys.exit("generate failed")
print("distinct", len(set(buf.raw)))
c.EVP_RAND_CTX_free(ctx)
c.EVP_RAND_free(r)
EOF
    run with_sanitizer_runtime env OPENSSL_CONF=rand2.cnf python3 rand.py
    expect_status 0
    expect_out "distinct 256"
fi

# The sample configuration parses and activates the provider.
sed -e "s|^module = .*|module = $PROV_SO|" \
    -e "s|^pkcs11-module-path = .*|pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE|" \
    -e "s|^pkcs11-module-token-pin = .*|pkcs11-module-token-pin = file:$WORK/pin|" \
    -e "s|^# config_diagnostics = 1|config_diagnostics = 1|" \
    "$PRIMUS_SRC/conf/openssl-primus.cnf" >sample.cnf
run with_sanitizer_runtime env OPENSSL_CONF=sample.cnf openssl list -providers -verbose
expect_status 0
expect_out "status: active"
run with_sanitizer_runtime env OPENSSL_CONF=sample.cnf openssl pkey -in "$(u p256)" -pubout
expect_status 0
expect_out "BEGIN PUBLIC KEY"

# From the command line, the module from $PRIMUS_PKCS11_MODULE, the PIN asked
# through OpenSSL's passphrase callback (-passin).
run with_sanitizer_runtime env OPENSSL_CONF=/dev/null PRIMUS_PKCS11_MODULE="$PRIMUS_SOFTHSM_MODULE" \
    openssl pkey -provider-path "$PROV_DIR" -provider primus -provider default \
    -in "$(u rsa2048)" -passin "pass:$PIN" -pubout -out cli.pem
expect_status 0
same_file cli.pem rsa2048.ref.pem "command-line activation"
# ... and the PIN from the URI's pin-source
run with_sanitizer_runtime env OPENSSL_CONF=/dev/null PRIMUS_PKCS11_MODULE="$PRIMUS_SOFTHSM_MODULE" \
    openssl pkey -provider-path "$PROV_DIR" -provider primus -provider default \
    -in "$(u p256)?pin-source=file:$WORK/pin" -pubout -out cli2.pem
expect_status 0
same_file cli2.pem p256.ref.pem "pin-source in the URI"

# ---- public keys, byte for byte ---------------------------------------------------
for name in rsa2048 p256 rsa3072 rsa4096 p384 p521; do
    ossl_ok "pubout $name" pkey -in "$(u "$name")" -pubout -out "$name.pub.pem"
    same_file "$name.pub.pem" "$name.ref.pem" "pkey -pubout $name"
    ossl_ok "pubin $name" pkey -pubin -in "$(u "$name");type=public" -pubout -out "$name.pub2.pem"
    same_file "$name.pub2.pem" "$name.ref.pem" "public key object $name"
    ossl_ok "DER pubout $name" pkey -in "$(u "$name")" -pubout -outform DER -out "$name.pub.der"
    plain pkey -in "$name.ref.pem" -pubin -pubout -outform DER -out "$name.ref.der"
    same_file "$name.pub.der" "$name.ref.der" "pkey -pubout -outform DER $name"
done
# EC keys carry their named curve
for pair in p256:prime256v1 p384:secp384r1 p521:secp521r1; do
    run ossl pkey -in "$(u "${pair%%:*}")" -pubout -text -noout
    expect_status 0
    expect_out "ASN1 OID: ${pair#*:}"
    expect_no_out "Field Type"
done
run ossl pkey -in "$(u rsa2048)" -text -noout
expect_status 0
expect_out "PKCS#11 private RSA key (2048 bit)"
expect_out "Private key: in the HSM"
expect_no_out "privateExponent"

# ---- signatures, verified by the default provider ------------------------------------
for md in sha1 sha224 sha256 sha384 sha512; do
    ossl_ok "RSA PKCS#1 $md" dgst "-$md" -sign "$(u rsa2048)" -out "rsa.$md.sig" data
    plain_ok "verify RSA PKCS#1 $md" dgst "-$md" -verify rsa2048.ref.pem -signature "rsa.$md.sig" data
    expect_out "Verified OK"
done
ossl_ok "RSA-4096 PKCS#1" dgst -sha512 -sign "$(u rsa4096)" -out rsa4096.sig data
plain_ok "verify RSA-4096" dgst -sha512 -verify rsa4096.ref.pem -signature rsa4096.sig data

# RSA-PSS: salt lengths digest, max, auto, a number; MGF1 digest
n=0
for opts in "sha256 digest sha256" "sha384 max sha384" "sha512 auto sha512" "sha256 20 sha256" \
    "sha1 20 sha1"; do
    set -- $opts
    n=$((n + 1))
    ossl_ok "RSA-PSS $opts" dgst "-$1" -sign "$(u rsa3072)" -sigopt rsa_padding_mode:pss \
        -sigopt "rsa_pss_saltlen:$2" -sigopt "rsa_mgf1_md:$3" -out "pss$n.sig" data
    vsalt=$2
    [ "$vsalt" = max ] && vsalt=auto
    plain_ok "verify RSA-PSS $opts" dgst "-$1" -verify rsa3072.ref.pem -sigopt rsa_padding_mode:pss \
        -sigopt "rsa_pss_saltlen:$vsalt" -sigopt "rsa_mgf1_md:$3" -signature "pss$n.sig" data
    expect_out "Verified OK"
done
# PSS with salt = digest length is what TLS uses; check the verifier insists on it
plain_ok "verify PSS digest-length salt strictly" dgst -sha256 -verify rsa3072.ref.pem \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -signature pss1.sig data

for pair in p256:sha256 p256:sha1 p384:sha384 p521:sha512 p521:sha256 p384gen:sha512; do
    k=${pair%%:*} md=${pair#*:}
    [ -f "$k.ref.pem" ] || ossl pkey -in "$(u "$k")" -pubout -out "$k.ref.pem"
    ossl_ok "ECDSA $k $md" dgst "-$md" -sign "$(u "$k")" -out "$k.$md.sig" data
    plain_ok "verify ECDSA $k $md" dgst "-$md" -verify "$k.ref.pem" -signature "$k.$md.sig" data
    expect_out "Verified OK"
done
# The provider verifies too (in software, with the public half).
ossl_ok "verify through the provider" dgst -sha256 -verify "$(u p256);type=public" \
    -signature p256.sha256.sig data
expect_out "Verified OK"
# pkeyutl on a prepared hash
plain dgst -sha256 -binary -out data.sha256 data
ossl_ok "pkeyutl ECDSA on a hash" pkeyutl -sign -inkey "$(u p256)" -in data.sha256 -out p256.raw.sig
plain_ok "verify pkeyutl ECDSA" pkeyutl -verify -pubin -inkey p256.ref.pem -in data.sha256 \
    -sigfile p256.raw.sig
ossl_ok "pkeyutl RSA with digest" pkeyutl -sign -inkey "$(u rsa2048)" -in data.sha256 \
    -pkeyopt digest:sha256 -out rsa.raw.sig
plain_ok "verify pkeyutl RSA" dgst -sha256 -verify rsa2048.ref.pem -signature rsa.raw.sig data

# ---- certificates, CSRs, CMS ------------------------------------------------------------
for k in rsa2048 p256 p384; do
    ossl_ok "req -x509 $k" req -new -x509 -key "$(u "$k")" -subj "/CN=primus $k" -days 30 \
        -out "$k.crt"
    plain_ok "verify self-signed $k" verify -CAfile "$k.crt" "$k.crt"
    plain x509 -in "$k.crt" -pubkey -noout >"$k.crtpub.pem"
    same_file "$k.crtpub.pem" "$k.ref.pem" "certificate public key $k"
done
run plain x509 -in p256.crt -noout -text
expect_out "ASN1 OID: prime256v1"
expect_out "ecdsa-with-SHA256"
expect_no_out "Field Type"
ossl_ok "req -x509 RSA-PSS" req -new -x509 -key "$(u rsa3072)" -subj "/CN=primus pss" -days 30 \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -out pss.crt
plain_ok "verify RSA-PSS certificate" verify -CAfile pss.crt pss.crt
run plain x509 -in pss.crt -noout -text
expect_out "rsassaPss"
ossl_ok "CSR" req -new -key "$(u p384)" -subj "/CN=csr" -out p384.csr
plain_ok "verify CSR" req -in p384.csr -verify -noout

plain_ok "software leaf key" req -new -newkey rsa:2048 -nodes -keyout leaf.key -subj "/CN=leaf" \
    -out leaf.csr
ossl_ok "x509 -req -CAkey (EC CA)" x509 -req -in leaf.csr -CA p256.crt -CAkey "$(u p256)" \
    -CAcreateserial -days 7 -out leaf.crt
plain_ok "verify leaf (EC CA)" verify -CAfile p256.crt leaf.crt
ossl_ok "x509 -req -CAkey (RSA CA)" x509 -req -in leaf.csr -CA rsa2048.crt -CAkey "$(u rsa2048)" \
    -CAcreateserial -days 7 -out leaf2.crt
plain_ok "verify leaf (RSA CA)" verify -CAfile rsa2048.crt leaf2.crt

for k in rsa2048 p256; do
    ossl_ok "cms -sign $k" cms -sign -in data -signer "$k.crt" -inkey "$(u "$k")" -out "$k.cms" \
        -outform PEM
    plain_ok "cms -verify $k" cms -verify -in "$k.cms" -inform PEM -CAfile "$k.crt" -content data \
        -out /dev/null
    expect_err "Verification successful"
done

# ---- decryption and key agreement ----------------------------------------------------------
head -c 48 /dev/urandom >secret
plain_ok "encrypt PKCS#1" pkeyutl -encrypt -pubin -inkey rsa2048.ref.pem -in secret -out secret.p1
ossl_ok "decrypt PKCS#1" pkeyutl -decrypt -inkey "$(u rsa2048)" -in secret.p1 -out secret.p1.out
same_file secret.p1.out secret "PKCS#1 v1.5 decryption"
plain_ok "encrypt OAEP" pkeyutl -encrypt -pubin -inkey rsa2048.ref.pem -in secret -out secret.oaep \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1
ossl_ok "decrypt OAEP" pkeyutl -decrypt -inkey "$(u rsa2048)" -in secret.oaep -out secret.oaep.out \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1
same_file secret.oaep.out secret "OAEP SHA-1 decryption"
plain_ok "encrypt OAEP (RSA-3072)" pkeyutl -encrypt -pubin -inkey rsa3072.ref.pem -in secret \
    -out secret.oaep3 -pkeyopt rsa_padding_mode:oaep
ossl_ok "decrypt OAEP (RSA-3072)" pkeyutl -decrypt -inkey "$(u rsa3072)" -in secret.oaep3 \
    -out secret.oaep3.out -pkeyopt rsa_padding_mode:oaep
same_file secret.oaep3.out secret "OAEP SHA-1 decryption (RSA-3072)"
# encryption through the provider is software, decryptable by the software key
ossl_ok "encrypt with the HSM key's public half" pkeyutl -encrypt -inkey "$(u rsa3072);type=public" \
    -pubin -in secret -out secret.enc
plain_ok "decrypt in software" pkeyutl -decrypt -inkey rsa3072.key -in secret.enc -out secret.enc.out
same_file secret.enc.out secret "provider encryption"

for pair in p256:P-256 p384gen:P-384; do
    k=${pair%%:*}
    plain_ok "peer $k" genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${pair#*:}" -out "peer.$k.key"
    plain pkey -in "peer.$k.key" -pubout -out "peer.$k.pub"
    ossl_ok "derive $k in the HSM" pkeyutl -derive -inkey "$(u "$k")" -peerkey "peer.$k.pub" \
        -out "ecdh.$k.hsm"
    plain_ok "derive $k in software" pkeyutl -derive -inkey "peer.$k.key" -peerkey "$k.ref.pem" \
        -out "ecdh.$k.peer"
    same_file "ecdh.$k.hsm" "ecdh.$k.peer" "ECDH $k"
done

# ---- the URI PEM file ------------------------------------------------------------------------
for k in rsa2048 p256; do
    ossl_ok "write URI PEM $k" pkey -in "$(u "$k")" -out "$k.uri.pem"
    grep -q "^-----BEGIN PKCS#11 PROVIDER URI-----$" "$k.uri.pem" && pass \
        || fail "$k.uri.pem is not a URI PEM file: $(cat "$k.uri.pem")"
    run plain asn1parse -in "$k.uri.pem"
    expect_out "VISIBLESTRING     :PKCS#11 Provider URI v1.0"
    expect_out "UTF8STRING        :pkcs11:"
    expect_out "object=$k"
    expect_no_out "$PIN"
    ossl_ok "read URI PEM $k" pkey -in "$k.uri.pem" -pubout -out "$k.uri.pub"
    same_file "$k.uri.pub" "$k.ref.pem" "public key from $k.uri.pem"
    ossl_ok "sign with URI PEM $k" dgst -sha256 -sign "$k.uri.pem" -out "$k.uri.sig" data
    plain_ok "verify URI PEM signature $k" dgst -sha256 -verify "$k.ref.pem" -signature "$k.uri.sig" data
done
ossl_ok "write URI PEM as DER" pkey -in "$(u p384)" -outform DER -out p384.uri.der
run plain asn1parse -inform DER -in p384.uri.der
expect_out "PKCS#11 Provider URI v1.0"
ossl_ok "read URI DER" pkey -inform DER -in p384.uri.der -pubout -out p384.uri.pub
same_file p384.uri.pub p384.ref.pem "public key from p384.uri.der"
# The direct public-key API (PEM_read_PUBKEY) and OSSL_STORE (-pubin) on a URI key file
CHAINS="$PRIMUS_BUILD/tests/decoder_chains"
run env OPENSSL_CONF="$CONF" "$CHAINS" pubkey p256.uri.pem
expect_status 0
expect_out "bits 256"
ossl_ok "read URI PEM as a public key" pkey -pubin -in rsa2048.uri.pem -out rsa2048.pubin.pub
# A key file naming a key of a type the provider does not handle (DSA):
# the reason, not OpenSSL's bare "unsupported", where the program reads the
# file itself (servers: PEM_read_PrivateKey)
plain_ok "DSA parameters" genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -out dsa.param
plain_ok "DSA key" genpkey -paramfile dsa.param -out dsa.key
plain_ok "DSA key as PKCS#8" pkcs8 -topk8 -nocrypt -in dsa.key -out dsa.p8
softhsm2-util --import dsa.p8 --token "$T" --label dsa1024 --id 0d --pin "$PIN" >/dev/null \
    || fail "import the DSA key"
run env OPENSSL_CONF="$CONF" "$PRIMUS_BUILD/tools/primusctl" uri-pem "$(u dsa1024);type=private" \
    -out dsa.uri.pem
expect_status 0
run env OPENSSL_CONF="$CONF" "$CHAINS" privkey dsa.uri.pem
expect_status 1
expect_out "is a key of PKCS#11 type 0x1, which the provider does not handle (RSA, EC on named curves and Ed25519 are)"
same_file rsa2048.pubin.pub rsa2048.ref.pem "public key from rsa2048.uri.pem (-pubin)"
# Applications that read certificates and never use an HSM key: the chain
# OpenSSL 3.0 builds for each certificate's public key may gain the
# provider's PEM-to-DER step (named DER, as OpenSSL's own), but none of the
# URI key file decoders, which would be set up for every certificate only to
# be skipped (bench/RESULTS.md, "Start-up").
run env OPENSSL_CONF=/dev/null "$CHAINS" spki
expect_status 0
without=$OUT
run env OPENSSL_CONF="$CONF" "$CHAINS" spki
expect_status 0
python3 - "$without" "$OUT" <<'PY' && pass || fail "certificate key chains: without $without; with $OUT"
import sys
without = dict(l.split() for l in sys.argv[1].splitlines())
with_primus = dict(l.split() for l in sys.argv[2].splitlines())
assert without.keys() == with_primus.keys() and len(without) == 3
for k in without:
    assert int(with_primus[k]) - int(without[k]) <= 1, k
PY
echo "    decoders per certificate key (without / with primus): $(tr '\n' ' ' <<<"$without") / $(tr '\n' ' ' <<<"$OUT")"

# ---- the store: listing, alias, certificates ---------------------------------------------------
run ossl storeutl "pkcs11:token=$T;object=rsa2048"
expect_status 0
expect_out "Total found: 2"
run ossl storeutl -alias p521 "pkcs11:token=$T"
expect_status 0
expect_out "Total found: 2"
plain x509 -in rsa2048.crt -outform DER -out rsa2048.crt.der
OPENSSL_CONF=/dev/null "${P11TOOL[@]}" --login --pin "$PIN" --write-object rsa2048.crt.der \
    --type cert --id 01 --label rsa2048 >/dev/null 2>&1 || fail "store the certificate"
ossl_ok "certificate from the token" x509 -in "$(u rsa2048);type=cert" -outform DER -out tok.crt.der
same_file tok.crt.der rsa2048.crt.der "certificate read from the token"
run ossl storeutl -certs "pkcs11:token=$T"
expect_status 0
expect_out "Total found: 1"
ossl_ok "verify against the token's certificate (-CAstore)" verify -CAstore "pkcs11:token=$T" rsa2048.crt

# ---- key generation in the HSM ----------------------------------------------------------------
GEN=(genpkey -propquery "?provider=primus")
ossl_ok "generate RSA in the HSM" "${GEN[@]}" -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt "pkcs11_uri:pkcs11:token=$T;object=gen-rsa;id=%10" -out gen-rsa.pem
ossl_ok "generate P-256 in the HSM" "${GEN[@]}" -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt "pkcs11_uri:pkcs11:token=$T;object=gen-ec;id=%11" -out gen-ec.pem
ossl_ok "generate Ed25519 in the HSM" "${GEN[@]}" -algorithm ED25519 \
    -pkeyopt "pkcs11_uri:pkcs11:token=$T;object=gen-ed;id=%12" -out gen-ed.pem
for k in gen-rsa gen-ec gen-ed; do
    grep -q "BEGIN PKCS#11 PROVIDER URI" "$k.pem" && pass || fail "$k.pem is not a URI PEM"
    ossl_ok "public half of $k" pkey -in "$k.pem" -pubout -out "$k.pub"
done
# Sizes of private HSM keys (answered from the token's attributes) equal the
# default provider's for the same public key.
for k in rsa2048 rsa3072 rsa4096 p256 p384 p521 gen-ed; do
    ref=$k.ref.pem
    [ "$k" = gen-ed ] && ref=gen-ed.pub
    run env OPENSSL_CONF="$CONF" "$PRIMUS_BUILD/tests/key_sizes" "$(u "$k");type=private" "$ref"
    expect_status 0
done
run "${P11TOOL[@]}" --login --pin "$PIN" --list-objects --type privkey
for k in gen-rsa gen-ec gen-ed; do
    grep -A4 "label: *$k\$" <<<"$OUT" | grep -q "sensitive, always sensitive, never extractable" \
        && pass || fail "$k must be sensitive and never extractable"
done
ossl_ok "sign with generated RSA" dgst -sha256 -sign gen-rsa.pem -out gen-rsa.sig data
plain_ok "verify generated RSA" dgst -sha256 -verify gen-rsa.pub -signature gen-rsa.sig data
ossl_ok "sign with generated EC" dgst -sha384 -sign "$(u gen-ec)" -out gen-ec.sig data
plain_ok "verify generated EC" dgst -sha384 -verify gen-ec.pub -signature gen-ec.sig data
ossl_ok "sign with Ed25519" pkeyutl -sign -rawin -inkey gen-ed.pem -in data -out gen-ed.sig
plain_ok "verify Ed25519" pkeyutl -verify -rawin -pubin -inkey gen-ed.pub -in data -sigfile gen-ed.sig
expect_out "Signature Verified Successfully"
ossl_ok "Ed25519 certificate" req -new -x509 -key "$(u gen-ed)" -subj "/CN=ed" -days 3 -out ed.crt
plain_ok "verify Ed25519 certificate" verify -CAfile ed.crt ed.crt

# Without pkcs11_uri the key manager makes ordinary software keys.
ossl_ok "software key through the provider" "${GEN[@]}" -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -out sw.key
run plain pkey -in sw.key -noout -text
expect_status 0
expect_out "priv:"
ossl_ok "encrypted software key through the provider" "${GEN[@]}" -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -aes256 -pass pass:wordpass -out swe.key
grep -q "BEGIN ENCRYPTED PRIVATE KEY" swe.key && pass || fail "the software key must be encrypted"
plain_ok "decrypt the software key" pkey -in swe.key -passin pass:wordpass -noout

finish
