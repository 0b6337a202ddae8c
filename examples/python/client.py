#!/usr/bin/env python3
"""HTTPS client whose certificate's private key is in the HSM.

    OPENSSL_CONF=openssl.cnf python3 client.py URL CA [--cert CERT --key KEYFILE]
                                               [--tls 1.2|1.3] [--body]

KEYFILE is the PEM file that holds only the key's pkcs11: URI
(`primusctl uri-pem URI -out KEYFILE`): Python's ssl module hands it to
OpenSSL, and the provider loaded through OPENSSL_CONF turns it into a
handle on the key in the HSM.  Each handshake that asks for a client
certificate is then signed in the HSM.  Without --cert/--key no client
certificate is offered.  --tls pins the TLS version; --body prints the
whole response body.  Exit status 0: the server answered 200; 1: refused.
"""
import argparse
import http.client
import ssl
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", choices=["1.2", "1.3"])
    ap.add_argument("--body", action="store_true")
    a = ap.parse_args()

    ctx = ssl.create_default_context(cafile=a.ca)
    if a.tls:
        v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[a.tls]
        ctx.minimum_version = ctx.maximum_version = v
    if a.cert:
        # The one line that matters: the key file names the key in the HSM.
        ctx.load_cert_chain(a.cert, keyfile=a.key)
    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    try:
        conn.request("GET", u.path or "/")
        version = conn.sock.version()
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
    except (ssl.SSLError, ConnectionError) as e:
        print(f"refused: {e}")
        return 1
    finally:
        conn.close()
    first = body.strip().splitlines()[0] if body.strip() else ""
    print(f"HTTP {resp.status} over {version}: {first[:100]}")
    if a.body:
        print(body)
    return 0 if resp.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
