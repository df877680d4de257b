"""How the service verifies the servers it talks to over TLS (the relay, the IMAP server).

Verification is always on: the system's authorities, or ``ca_file`` (a PEM file of a private
authority, ``[smtp] ca_file`` / ``[imap] ca_file``) when the servers use one. A certificate that does
not verify is refused, never silently accepted.
"""

from __future__ import annotations

import ssl


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """A client context that verifies the server's certificate and name."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
