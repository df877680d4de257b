"""How the service verifies the servers it talks to over TLS (the relay, the IMAP server).

Verification is always on: the system's authorities, or ``ca_file`` (a PEM file of a private
authority, ``[smtp] ca_file`` / ``[imap] ca_file``) when the servers use one. A certificate that does
not verify is refused, never silently accepted; :func:`certificate_refused` says so in one French
line naming the settings to change.
"""

from __future__ import annotations

import ssl


class CaFileError(ValueError):
    """``ca_file`` names no readable PEM file of an authority: a setting to fix."""


def tls_context(ca_file: str = "", *, setting: str = "ca_file") -> ssl.SSLContext:
    """A client context that verifies the server's certificate and name. ``setting`` names
    ``ca_file`` in the error (e.g. ``[imap] ca_file``) when the file cannot be used."""
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except OSError as exc:  # missing, unreadable, or no certificate in it (ssl.SSLError is an OSError)
        raise CaFileError(f"{setting} : « {ca_file} » n'est pas un fichier PEM d'autorité lisible "
                          f"({exc.strerror or exc})") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def certificate_refused(server: str, section: str, exc: ssl.SSLCertVerificationError) -> str:
    """The account of a server certificate that did not verify (an unknown authority, another host
    name, expired): ``server`` as the sentence names it (« du serveur IMAP h:p »), ``section`` the
    configuration section whose ``host`` and ``ca_file`` to check."""
    return (f"le certificat {server} n'est pas reconnu ({exc.verify_message or exc}) : vérifiez [{section}] "
            f"host, ou donnez l'autorité qui l'a signé dans [{section}] ca_file")
