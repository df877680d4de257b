"""``Authentication-Results`` headers (RFC 8601) and the decision "did a trusted server see this
sender authenticated?". Pure functions over header values.

A header looks like::

    Authentication-Results: mx.ville.example.org (Postfix) 1;
        dkim=pass (2048-bit key) header.d=bretagne.pref.gouv.fr header.i=@bretagne.pref.gouv.fr;
        spf=pass smtp.mailfrom=sgar@bretagne.pref.gouv.fr;
        dmarc=pass (p=reject) header.from=bretagne.pref.gouv.fr

``parse_authentication_results`` reads one value into :class:`AuthResults` (comments dropped,
quoted strings kept, method versions ``dkim/1`` accepted). ``authenticated`` decides:

* only headers whose authserv-id is in ``trusted`` count: anyone can write such a header into the
  mail they send, only our own receiving servers' are worth anything;
* of each trusted authserv-id only the **topmost** header counts: a receiving server adds its
  own above the ones it found (and should delete forged ones with its id, RFC 8601 §5);
* the sender is authenticated when that header says ``dmarc=pass`` (with ``header.from``, when
  given, aligned with the From domain), or ``dkim=pass`` whose ``header.d`` (or the domain of
  ``header.i``) is aligned with the From domain, or ``spf=pass`` whose ``smtp.mailfrom`` (or
  ``smtp.helo`` when there is no mailfrom) domain is aligned with it.

Alignment is DMARC's relaxed mode: both domains have the same organisational domain. Without the
Public Suffix List, the organisational domain is the last two labels, or three when the last two
are a known public suffix of two labels (``gouv.fr``, ``co.uk``...): see ``TWO_LABEL_SUFFIXES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Public suffixes of two labels a French administration's correspondents may use.
TWO_LABEL_SUFFIXES = frozenset({
    "gouv.fr", "asso.fr", "nom.fr", "com.fr", "tm.fr", "presse.fr", "prd.fr", "cci.fr", "port.fr",
    "co.uk", "org.uk", "gov.uk", "ac.uk", "com.au", "gov.au", "co.nz", "com.br", "gouv.nc", "gouv.ci",
    "gouv.sn", "gouv.ht", "com.re", "co.re", "gc.ca", "gouv.qc.ca",
})


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` clause with its ``ptype.property=value`` pairs."""

    method: str  # lower case, without version: "dkim", "spf", "dmarc", "arc"...
    result: str  # lower case: "pass", "fail", "none", "neutral", "temperror"...
    properties: tuple[tuple[str, str], ...] = ()  # ("header.d", "example.org"), keys lower case

    def prop(self, name: str) -> str | None:
        return next((v for k, v in self.properties if k == name), None)


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str  # lower case
    results: tuple[AuthResult, ...]


def _strip_comments(value: str) -> str:
    """Remove (possibly nested) comments, keeping quoted strings intact."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            if not depth:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            if not depth:
                out.append(ch)
            continue
        if quoted:
            out.append(ch)
            if ch == '"':
                quoted = False
            continue
        if ch == '"' and not depth:
            quoted = True
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _split(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _tokens(clause: str) -> list[str]:
    """White-space separated tokens, a quoted string staying in one token; ``a = b`` joined."""
    raw = [t for t in _split(" ".join(clause.split()), " ") if t]
    joined: list[str] = []
    for token in raw:
        if joined and (token.startswith("=") or joined[-1].endswith("=")):
            joined[-1] += token
        else:
            joined.append(token)
    return joined


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def parse_authentication_results(value: str) -> AuthResults | None:
    """One header value; None when it has no authserv-id."""
    clauses = _split(_strip_comments(value), ";")
    head = clauses[0].split()
    if not head:
        return None
    authserv_id = _unquote(head[0]).lower()
    results: list[AuthResult] = []
    for clause in clauses[1:]:
        tokens = _tokens(clause)
        if not tokens or "=" not in tokens[0]:
            continue  # "none", or junk
        method, _, result = tokens[0].partition("=")
        method = method.split("/", 1)[0].strip().lower()
        props: list[tuple[str, str]] = []
        for token in tokens[1:]:
            key, sep, val = token.partition("=")
            if sep and key:
                props.append((key.strip().lower(), _unquote(val)))
        if method:
            results.append(AuthResult(method, _unquote(result).lower(), tuple(props)))
    return AuthResults(authserv_id, tuple(results))


def organisational_domain(domain: str) -> str:
    labels = [lab for lab in domain.strip().strip(".").lower().split(".") if lab]
    if len(labels) <= 2:
        return ".".join(labels)
    if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(domain: str | None, from_domain: str) -> bool:
    """DMARC relaxed alignment: same organisational domain."""
    if not domain or not from_domain:
        return False
    domain = domain.strip().lower().rpartition("@")[2]
    return organisational_domain(domain) == organisational_domain(from_domain)


def trusted_results(header_values: Iterable[str], trusted: Sequence[str]) -> list[AuthResults]:
    """The topmost header of each trusted authserv-id (headers given from the top down)."""
    wanted = {t.strip().lower() for t in trusted if t.strip()}
    chosen: dict[str, AuthResults] = {}
    for value in header_values:
        parsed = parse_authentication_results(value)
        if parsed is not None and parsed.authserv_id in wanted and parsed.authserv_id not in chosen:
            chosen[parsed.authserv_id] = parsed
    return list(chosen.values())


def passing_method(results: AuthResults, from_domain: str) -> str | None:
    """The method that authenticates the From domain in this header ("dmarc", "dkim", "spf")."""
    for res in results.results:
        if res.result != "pass":
            continue
        if res.method == "dmarc":
            said = res.prop("header.from")
            domain: str | None = from_domain if said is None else said
        elif res.method == "dkim":
            domain = res.prop("header.d") or res.prop("header.i")
        elif res.method == "spf":
            domain = res.prop("smtp.mailfrom") or res.prop("smtp.helo")
        else:
            continue
        if aligned(domain, from_domain):
            return res.method
    return None


def authenticated(header_values: Iterable[str], trusted: Sequence[str], from_addr: str | None) -> str | None:
    """``"dmarc"``/``"dkim"``/``"spf"`` when a trusted server saw the From domain authenticated."""
    if not from_addr or "@" not in from_addr:
        return None
    from_domain = from_addr.rpartition("@")[2].lower()
    for results in trusted_results(header_values, trusted):
        method = passing_method(results, from_domain)
        if method:
            return method
    return None
