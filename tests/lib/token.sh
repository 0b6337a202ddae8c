# Throwaway SoftHSM2 tokens for tests and the demo.  Source this file.
# Never touches the system token store: everything lives under $TOKEN_DIR.
#
#   token_setup DIR            make DIR, write a softhsm2.conf, export SOFTHSM2_CONF
#   token_create LABEL [PIN] [SO_PIN]   initialize a token (default PIN 1234)
#   token_keygen LABEL TYPE ID OBJLABEL [PIN]   key pair in the token with pkcs11-tool;
#                              TYPE is rsa:2048, rsa:3072, EC:prime256v1, EC:secp384r1, ...
#   token_pin_file PATH PIN    write a pin file with mode 0600
: "${PRIMUS_SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
export PRIMUS_SOFTHSM_MODULE

token_setup() {
    TOKEN_DIR=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    mkdir -p "$TOKEN_DIR/tokens"
    cat > "$TOKEN_DIR/softhsm2.conf" <<CONF
directories.tokendir = $TOKEN_DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    export SOFTHSM2_CONF="$TOKEN_DIR/softhsm2.conf"
    export TOKEN_DIR
}

token_create() {
    local label=$1 pin=${2:-1234} so=${3:-12345678}
    softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so" >/dev/null
}

token_keygen() {
    local label=$1 type=$2 id=$3 obj=$4 pin=${5:-1234}
    pkcs11-tool --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$label" --login --pin "$pin" \
        --keypairgen --key-type "$type" --id "$id" --label "$obj" >/dev/null
}

token_pin_file() {
    umask 077
    printf '%s' "$2" > "$1"
    chmod 600 "$1"
}
