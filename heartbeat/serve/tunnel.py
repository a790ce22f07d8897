"""Sharing the app: the login, and an HTTPS ngrok tunnel (pyngrok) with the login enforced at ngrok's edge."""
from __future__ import annotations

import atexit
import json
import os
import secrets
import sys
from pathlib import Path


def login(auth_file: str | None, share: bool) -> tuple[str, str] | None:
    """Credentials from $HEARTBEAT_AUTH ("user:password") or an auth file; with --share and none given,
    a strong password is generated and printed once."""
    text = os.environ.get("HEARTBEAT_AUTH") or (Path(auth_file).read_text().strip() if auth_file else "")
    if text:
        user, _, password = text.partition(":")
        if not user or len(password) < 8:
            sys.exit("HEARTBEAT_AUTH / --auth-file must be 'user:password' with a password of 8 or more characters")
        return user, password
    if share:
        user, password = "clinician", secrets.token_urlsafe(12)
        print(f"Public link login: user '{user}', password '{password}' (shown once; set HEARTBEAT_AUTH to choose)")
        return user, password
    return None


def open_tunnel(port: int, auth: tuple[str, str]) -> str | None:
    """An HTTPS ngrok tunnel to the app (token from $NGROK_AUTHTOKEN), with the login enforced at ngrok's
    edge as a basic-auth traffic policy (and again by the app). Returns the public URL, or None after
    saying plainly why not; the app keeps serving locally either way."""
    if not os.environ.get("NGROK_AUTHTOKEN"):
        print("Not sharing: NGROK_AUTHTOKEN is not set (get one at ngrok.com). Serving locally only.")
        return None
    from pyngrok import ngrok
    from pyngrok.exception import PyngrokError
    policy = {"on_http_request": [{"actions": [{"type": "basic-auth",
                                                "config": {"credentials": [f"{auth[0]}:{auth[1]}"]}}]}]}
    try:
        tunnel = ngrok.connect(str(port), "http", traffic_policy=json.dumps(policy))
    except PyngrokError as e:
        print(f"Not sharing: the ngrok agent could not start ({type(e).__name__}: {str(e).splitlines()[0][:160]}). "
              "Serving locally only.")
        return None
    atexit.register(_close_tunnel, tunnel.public_url)
    url = tunnel.public_url.replace("http://", "https://")
    print(f"Public HTTPS link: {url}")
    return url


def _close_tunnel(url: str) -> None:
    from pyngrok import ngrok
    try:
        ngrok.disconnect(url)
        ngrok.kill()
    except Exception:
        pass
