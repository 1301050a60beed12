#!/usr/bin/env python3
"""Stand-in for GitHub's tarball API endpoint, over HTTPS, for the
private-flake test (no GitHub is reachable here).

Nix 2.8 (src/libfetchers/github.cc) fetches `github:OWNER/REPO/REV?host=HOST`
from `https://api.HOST/repos/OWNER/REPO/tarball/REV`, sending
`Authorization: token TOKEN` when `access-tokens` has an entry for HOST.
Like GitHub for a private repository, this answers 404 without a valid
token (GitHub does not reveal that the repository exists).

Usage: github_tarball.py ADDRESS PORT CERT KEY TOKEN_FILE TARBALL LOG
  Serves TARBALL for every REV of any OWNER/REPO to a request carrying the
  token in TOKEN_FILE (read once, so the token is never on a command line).
  LOG gets one line per request: method, path, and `authorized` or
  `refused` (never the header's value).
"""

import http.server
import ssl
import sys

address, port, cert, key, token_file, tarball, log = sys.argv[1:8]
with open(token_file) as f:
    TOKEN = f.read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        ok = (
            self.path.startswith("/repos/")
            and "/tarball/" in self.path
            and self.headers.get("Authorization") == f"token {TOKEN}"
        )
        with open(log, "a") as f:
            f.write(f"GET {self.path} {'authorized' if ok else 'refused'}\n")
        if not ok:
            body = b'{"message": "Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(tarball, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
