#!/usr/bin/env python3
"""HTTPS server whose private key is in the HSM.

    OPENSSL_CONF=openssl.cnf python3 server.py PORT CERT KEYFILE

Listens on 127.0.0.1:PORT.  KEYFILE is the PEM file that holds only the
key's pkcs11: URI (`primusctl uri-pem`); every handshake is signed in the
HSM through the provider.  Stops on SIGTERM or Ctrl-C.
"""
import http.server
import os
import signal
import ssl
import sys


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (f"hello from python pid {os.getpid()} over "
                f"{self.connection.version()}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("server: " + (fmt % args) + "\n")


def main():
    port, cert, keyfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # The key file names the key in the HSM.
    ctx.load_cert_chain(cert, keyfile=keyfile)
    httpd = http.server.HTTPServer(("127.0.0.1", port), Hello)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving https://127.0.0.1:{port}/", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
