#!/usr/bin/env python3
"""Local stand-in for the Cachix HTTP API (test world only; stdlib only).

The real service is https://cachix.org/api/v1 and cannot be reached from the
test machine. This server implements the parts of the published API the
provider uses, backed by files under $WORLD/cachix-api (re-read on every
request, so tests may add caches or tokens while it runs):

  caches/NAME.json   one cache: {"name", "uri", "isPublic", "publicSigningKeys",
                     "githubUsername", "permission"} (served as is)
  tokens             valid bearer tokens, one per line
  requests.log       one JSON line per request (written here): time, method,
                     path, query, status, auth_present, token_sha256 (sha256 hex
                     of the bearer token, never the token), body (narinfo hashes)

Endpoints (under /api/v1):
  GET  /cache/NAME          the cache's JSON; 404 if unknown; a private cache
                            needs "Authorization: Bearer TOKEN" with a token
                            from tokens (else 401)
  POST /cache/NAME/narinfo  body: JSON list of store-path hashes; answers the
                            JSON list of those that are missing, i.e. for which
                            $WORLD/cache/HASH.narinfo does not exist. Like the
                            real endpoint (servant `ReqBody '[JSON]`, `Post
                            '[JSON]`): 415 unless "Content-Type:
                            application/json", 406 for an Accept header that
                            excludes JSON; 400 for a body that is not a list
                            of store-path hashes
  GET  /_standin/health     not part of Cachix and not logged: liveness check
  GET  /_standin/auth       not part of Cachix: the world's nginx asks it
                            (auth_request) whether a request to the private
                            cache may pass: 200 for "Authorization: Bearer
                            TOKEN" or "Basic" with a password (a netrc entry's)
                            from tokens, else 401 (logged as method AUTH with
                            the scheme, the original URI in "path")

A cache file may name where its narinfos live with "_standinDir" (relative to
the world, default "cache"); "_standin*" keys are never served.

Usage: cachix_api.py --world DIR [--listen 127.0.0.1] [--port 8751]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
HASH_RE = re.compile(r"^[0-9a-df-np-sv-z]{32}$")  # Nix base32 (no e, o, u, t)
LOG_LOCK = threading.Lock()
SCRIPT_SHA256 = hashlib.sha256(open(__file__, "rb").read()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    server_version = "cachix-api-standin/1"
    protocol_version = "HTTP/1.1"

    # Set by main().
    world = ""

    def log_message(self, fmt, *args):  # quiet: requests.log is the record
        pass

    @property
    def api_dir(self):
        return os.path.join(self.world, "cachix-api")

    def _send(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _error(self, status, msg):
        self._send(status, {"error": msg, "status": status})

    def _token(self):
        auth = self.headers.get("Authorization")
        if auth is None:
            return False, None
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return True, parts[1].strip()
        if len(parts) == 2 and parts[0].lower() == "basic":
            try:
                user_pass = base64.b64decode(parts[1].strip(), validate=True).decode()
            except ValueError:
                return True, ""
            return True, user_pass.partition(":")[2]
        return True, ""

    def _scheme(self):
        auth = self.headers.get("Authorization")
        return auth.split(None, 1)[0] if auth else None

    def _valid_tokens(self):
        try:
            with open(os.path.join(self.api_dir, "tokens")) as f:
                return {line.strip() for line in f if line.strip() and not line.startswith("#")}
        except FileNotFoundError:
            return set()

    def _load_cache(self, name):
        if not NAME_RE.match(name):
            return None
        try:
            with open(os.path.join(self.api_dir, "caches", name + ".json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def _log(self, body_obj):
        present, token = self._token()
        entry = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
            "method": self.command,
            "path": urlsplit(self.path).path,
            "query": urlsplit(self.path).query,
            "status": getattr(self, "_status", None),
            "auth_present": present,
            "token_sha256": hashlib.sha256(token.encode()).hexdigest() if token else None,
            "body": body_obj,
        }
        if entry["method"] == "AUTH":
            entry["scheme"] = self._scheme()
            entry["path"] = self.headers.get("X-Original-URI")
        with LOG_LOCK, open(os.path.join(self.api_dir, "requests.log"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _authorized(self, cache):
        """None if the request may see CACHE, else the error status."""
        present, token = self._token()
        if cache.get("isPublic", False) and not present:
            return None
        if present and token and token in self._valid_tokens():
            return None
        return 401

    def _handle(self):
        self._status = None
        body_obj = None
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            path = urlsplit(self.path).path
            if path == "/_standin/health":
                self._send(200, {"ok": True, "world": self.world, "script_sha256": SCRIPT_SHA256})
                return
            if path == "/_standin/auth":
                self.command = "AUTH"
                _, token = self._token()
                if token and token in self._valid_tokens():
                    self._send(200, {"ok": True})
                else:
                    self._error(401, "Unauthorized")
                return
            m = re.match(r"^/api/v1/cache/([^/]+)(/narinfo)?/?$", path)
            if not m:
                self._error(404, "Not found")
                return
            name, narinfo = m.group(1), m.group(2)
            if narinfo:
                try:
                    body_obj = json.loads(raw.decode() or "null")
                except ValueError:
                    body_obj = raw.decode(errors="replace")
            if (self.command not in ("GET", "HEAD") and not narinfo) or (narinfo and self.command != "POST"):
                self._error(405, "Method not allowed")
                return
            cache = self._load_cache(name)
            if cache is None:
                self._error(404, f"Cache {name} does not exist")
                return
            status = self._authorized(cache)
            if status:
                self._error(status, "Unauthorized: this cache is private, a valid auth token is needed")
                return
            if not narinfo:
                self._send(200, {k: v for k, v in cache.items() if not k.startswith("_standin")})
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._error(415, "Unsupported Media Type: expected application/json")
                return
            accept = self.headers.get("Accept")
            if accept and not any(a.split(";")[0].strip() in ("*/*", "application/*", "application/json")
                                  for a in accept.split(",")):
                self._error(406, "Not Acceptable: the answer is application/json")
                return
            if not isinstance(body_obj, list) or not all(isinstance(h, str) for h in body_obj):
                self._error(400, "Expected a JSON list of store path hashes")
                return
            bad = [h for h in body_obj if not HASH_RE.match(h)]
            if bad:
                self._error(400, f"Invalid store path hash: {bad[0]}")
                return
            cache_dir = os.path.join(self.world, cache.get("_standinDir", "cache"))
            missing = [h for h in body_obj if not os.path.exists(os.path.join(cache_dir, h + ".narinfo"))]
            self._send(200, missing)
        except Exception as e:  # noqa: BLE001 - a test server must answer
            if self._status is None:
                self._error(500, f"stand-in error: {e}")
        finally:
            if urlsplit(self.path).path != "/_standin/health":
                self._log(body_obj)

    do_GET = _handle
    do_HEAD = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8751)
    ap.add_argument("--pid-file")
    args = ap.parse_args()
    Handler.world = os.path.abspath(args.world)
    os.makedirs(os.path.join(Handler.world, "cachix-api", "caches"), exist_ok=True)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer((args.listen, args.port), Handler)
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(args.pid_file + ".tmp", args.pid_file)
    print(f"cachix API stand-in on http://{args.listen}:{args.port}/api/v1 (world {Handler.world})",
          file=sys.stderr, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
