"""A stand-in ngrok agent for tests (no internet here): prints ngrok's start-up log lines and serves
the agent's local API on 127.0.0.1, recording every request pyngrok makes in $FAKE_NGROK_LOG."""
import json
import os
import socket
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

LOG = os.environ.get("FAKE_NGROK_LOG", os.devnull)
endpoints = {}


def record(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/") in ("/api/endpoints", "/api/tunnels"):
            return self._send(200, {"endpoints": list(endpoints.values()), "tunnels": list(endpoints.values())})
        name = self.path.rsplit("/", 1)[-1]
        return self._send(200, endpoints[name]) if name in endpoints else self._send(404, {"msg": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        record({"method": "POST", "path": self.path, "body": body})
        name = body.get("name", str(uuid.uuid4()))
        endpoints[name] = {"name": name, "uri": f"/api/endpoints/{name}", "public_url": f"https://{uuid.uuid4().hex[:8]}.ngrok.app",
                           "proto": "https", "upstream": body.get("upstream", {})}
        self._send(201, endpoints[name])

    def do_DELETE(self):
        record({"method": "DELETE", "path": self.path})
        endpoints.pop(self.path.rsplit("/", 1)[-1], None)
        self._send(204)


def main():
    args = sys.argv[1:]
    if args[:2] == ["config", "add-authtoken"]:
        print("Authtoken saved to configuration file")
        return
    if args[:1] != ["start"]:
        print("fake ngrok: unsupported command", args, file=sys.stderr)
        sys.exit(1)
    record({"method": "START", "args": args})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = HTTPServer(("127.0.0.1", port), Api)
    for msg in ('msg="starting web service" obj=web addr=127.0.0.1:%d' % port, 'msg="tunnel session started"',
                'msg="client session established"'):
        print(f"t=2026-11-23T00:00:00+0000 lvl=info {msg}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
