#!/usr/bin/env python3
"""Write the seed corpora of fuzz_uri_pem and fuzz_store.

    python3 tests/fuzz/make_seeds.py      (rewrites corpus/uri_pem, corpus/store)

The seeds name the objects fuzz_env.c puts on its two tokens ("fuzz", PIN
1234, and "fuzz2", PIN 5678; fuzz_env.h lists them), so that fuzzing starts
from inputs that reach keys, certificates, ambiguous labels, wrong PINs and
each kind of error, not only from the parser's refusals.  Each seed's file
name says what it is.  Regenerating is only needed when this list changes;
the fuzzers never write into the repository (scripts/fuzz.sh works on a copy).
"""
import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DESC = b"PKCS#11 Provider URI v1.0"
LABEL = "PKCS#11 PROVIDER URI"


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def uri_der(uri, desc=DESC, uri_tag=0x0C, desc_tag=0x1A):
    """SEQUENCE { VisibleString desc, UTF8String uri }, as encoder.c writes it."""
    if isinstance(uri, str):
        uri = uri.encode()
    return tlv(0x30, tlv(desc_tag, desc) + tlv(uri_tag, uri))


def pem(der, label=LABEL, headers=""):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN %s-----\n%s%s\n-----END %s-----\n"
            % (label, headers, "\n".join(lines), label)).encode()


# URIs a key file may hold (decoded for a private key, and for a public key).
PEM_URIS = {
    "ec-private": "pkcs11:token=fuzz;object=ec;type=private",
    "rsa-by-id": "pkcs11:token=fuzz;id=%01;type=private",
    "ed25519": "pkcs11:token=fuzz;object=ed;type=private",
    "secp256k1": "pkcs11:token=fuzz;id=%09;type=private",
    "no-type": "pkcs11:token=fuzz;object=rsa",
    "public-object": "pkcs11:token=fuzz;object=ec;type=public",
    "ambiguous-label": "pkcs11:token=fuzz;object=dup;type=private",
    "two-tokens": "pkcs11:object=ec;type=private",
    "token2-pin": "pkcs11:token=fuzz2;object=ec;type=private?pin-value=5678",
    "wrong-pin": "pkcs11:token=fuzz;object=ec;type=private?pin-value=0000",
    "secret-key": "pkcs11:token=fuzz;object=aes;type=secret-key",
    "cert-type": "pkcs11:token=fuzz;object=ec;type=cert",
    "no-token": "pkcs11:token=nosuch;object=ec",
    "no-object": "pkcs11:token=fuzz;object=nosuch",
    "module-path": "pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=fuzz;object=ec",
    "module-missing": "pkcs11:module-path=/nonexistent/lib.so;object=ec",
    "pin-source-missing": "pkcs11:token=fuzz;object=ec?pin-source=file:/nonexistent/pin",
    "token-attrs": "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;token=fuzz;"
                   "object=rsa;type=private",
    "bad-escape": "pkcs11:token=fu%zz;object=ec",
    "not-pkcs11": "file:/etc/passwd",
}


def uri_pem_seeds():
    seeds = {}
    for name, uri in PEM_URIS.items():
        seeds["der-" + name] = uri_der(uri)
    for name in ("ec-private", "rsa-by-id", "ambiguous-label", "wrong-pin", "no-token"):
        seeds["pem-" + name] = pem(uri_der(PEM_URIS[name]))
    ec = PEM_URIS["ec-private"]
    seeds["der-wrong-desc"] = uri_der(ec, desc=b"PKCS#11 Provider URI v2.0")
    seeds["der-nul-in-uri"] = uri_der(b"pkcs11:token=fuzz\0;object=ec")
    seeds["der-empty-uri"] = uri_der(b"")
    seeds["der-printable-uri"] = uri_der(ec, uri_tag=0x13)
    seeds["der-trailing-bytes"] = uri_der(ec) + b"\x00\x00"
    seeds["der-long-form-length"] = (b"\x30\x81" + bytes([len(uri_der(ec)) - 2])
                                     + uri_der(ec)[2:])
    seeds["der-long-uri"] = uri_der("pkcs11:token=fuzz;object=" + "x" * 300)
    seeds["pem-headers"] = pem(uri_der(ec), headers="Proc-Type: 4,ENCRYPTED\n"
                               "DEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n")
    seeds["pem-bad-base64"] = pem(b"") .replace(b"\n-----END", b"!!!!\n-----END")
    seeds["pem-after-other-block"] = pem(b"\x30\x00", label="CERTIFICATE") + pem(uri_der(ec))
    seeds["pem-other-label"] = pem(uri_der(ec), label="PRIVATE KEY")
    return seeds


# opt byte (fuzz_store.c): bits 0-2 expect, 3-4 PIN prompt, 5-6 search.
EXPECT = {"any": 0, "pkey": 1, "pubkey": 2, "cert": 3, "params": 4, "crl": 5, "name": 6}
PROMPT = {"none": 0, "pin-a": 1, "pin-b": 2, "pin-wrong": 3}
SEARCH = {"none": 0, "alias": 1, "subject": 2, "issuer-serial": 3}


def opts(expect="any", prompt="none", search="none", alias=b""):
    return b"\0" + bytes([EXPECT[expect] | PROMPT[prompt] << 3 | SEARCH[search] << 5]) + alias


def store_seeds():
    s = {
        "list-token": b"token=fuzz",
        "list-private-no-pin": b"token=fuzz;type=private",
        "list-private-pin": b"token=fuzz;type=private?pin-value=1234",
        "list-id": b"token=fuzz;id=%02?pin-value=1234",
        "list-both-tokens": b"object=ec",
        "list-both-tokens-one-pin": b"object=ec;type=private?pin-value=1234",
        "token2": b"token=fuzz2;object=ec?pin-value=5678",
        "token-prefix": b"token=fuzz2",
        "raw-scheme-upper": b"PKCS11:token=fuzz;object=ec;type=public",
        "raw-scheme": b"pkcs11:token=fuzz;object=rsa;type=public",
        "empty": b"",
        "secret-key": b"token=fuzz;object=aes;type=secret-key",
        "data-object": b"token=fuzz;object=data;type=data",
        "no-token": b"token=nosuch",
        "all-token-attrs": b"model=SoftHSM%20v2;manufacturer=SoftHSM%20project;token=fuzz;"
                           b"library-manufacturer=SoftHSM;library-description=Implementation"
                           b"%20of%20PKCS11;library-version=2.6;type=cert",
        "slot-attrs": b"slot-description=SoftHSM%20slot%20ID%200x0;slot-manufacturer="
                      b"SoftHSM%20project;slot-id=0",
        "module-path": b"module-path=/usr/lib/softhsm/libsofthsm2.so;token=fuzz;type=public",
        "module-missing": b"module-path=/nonexistent/lib.so",
        "module-name": b"module-name=softhsm2;token=fuzz;type=cert",
        "pin-source-missing": b"token=fuzz;type=private?pin-source=file:/nonexistent/pin",
        "pin-empty": b"token=fuzz;type=private?pin-value=",
        "vendor-attr": b"token=fuzz;x-vendor=1;object=ec?x-query=2",
        "bad-escape": b"token=fu%zz",
        "bad-type": b"token=fuzz;type=bogus",
        "repeated-attr": b"token=fuzz;token=fuzz2",
        "long-id": b"token=fuzz;id=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10",
        "pkey-rsa": b"token=fuzz;object=rsa;type=private?pin-value=1234" + opts("pkey"),
        "pkey-prompt": b"token=fuzz;object=ec;type=private" + opts("pkey", "pin-a"),
        "pkey-prompt-token2": b"token=fuzz2;object=ec" + opts("pkey", "pin-b"),
        "pkey-prompt-wrong": b"token=fuzz;object=ed" + opts("pkey", "pin-wrong"),
        "pkey-ambiguous": b"token=fuzz;object=dup" + opts("pkey", "pin-a"),
        "pkey-two-tokens": b"object=ec;type=private" + opts("pkey", "pin-a"),
        "pkey-of-public-uri": b"token=fuzz;object=rsa;type=public" + opts("pkey"),
        "pubkey-ed25519": b"token=fuzz;object=ed" + opts("pubkey"),
        "pubkey-of-private-uri": b"token=fuzz;object=ec;type=private" + opts("pubkey", "pin-a"),
        "cert-one": b"token=fuzz;object=ec;type=cert" + opts("cert"),
        "cert-ambiguous": b"token=fuzz;type=cert" + opts("cert"),
        "cert-of-key-uri": b"token=fuzz;object=ec;type=private" + opts("cert"),
        "cert-subject": b"token=fuzz" + opts("cert", search="subject"),
        "list-subject": b"token=fuzz" + opts(search="subject"),
        "cert-issuer-serial": b"token=fuzz" + opts("cert", search="issuer-serial"),
        "alias-rsa": b"token=fuzz" + opts("pkey", "pin-a", "alias", b"rsa"),
        "alias-list": b"token=fuzz" + opts(search="alias", alias=b"dup"),
        "alias-too-long": b"token=fuzz" + opts(search="alias", alias=b"a" * 200),
        "alias-not-utf8": b"token=fuzz" + opts("pkey", "pin-a", "alias", b"\xff\xfe%"),
        "pkey-secp256k1": b"token=fuzz;object=k1" + opts("pkey", "pin-a"),
        "cert-renewed": b"token=fuzz;object=ec-renewed;type=cert" + opts("cert"),
        "expect-params": b"token=fuzz" + opts("params"),
        "expect-crl": b"token=fuzz" + opts("crl"),
        "expect-name": b"token=fuzz" + opts("name"),
    }
    # As typed by users, with the scheme (the target adds none then).
    return {name: (v if v.lower().startswith(b"pkcs11:") else b"pkcs11:" + v)
            for name, v in s.items()}


def write(dirname, seeds):
    path = os.path.join(HERE, "corpus", dirname)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.remove(os.path.join(path, old))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (path, len(seeds)))


if __name__ == "__main__":
    write("uri_pem", uri_pem_seeds())
    write("store", store_seeds())
