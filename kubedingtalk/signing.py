"""DingTalk's request signature (加签), shared by the sender and the robot emulator.

The signature is computed per request from the current time: DingTalk rejects
timestamps more than an hour away, so a signature is never cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse


def signature(secret: str, timestamp_ms: int) -> str:
    """Base64 HMAC-SHA256 of ``"{timestamp}\\n{secret}"`` keyed with the secret (not URL-encoded)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with ``timestamp`` and ``sign`` appended; the signature is URL-encoded exactly once."""
    encoded = urllib.parse.quote(signature(secret, timestamp_ms), safe="")
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={encoded}"
