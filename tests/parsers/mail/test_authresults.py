"""Authentication-Results parsing (RFC 8601) and the "authenticated by a trusted server" decision."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.mail.authresults import (
    aligned,
    authenticated,
    organisational_domain,
    parse_authentication_results,
)

TRUSTED = ("mx.ville.gouv.fr",)
FROM = "sgar@bretagne.pref.gouv.fr"


def test_parses_methods_properties_comments_and_versions() -> None:
    parsed = parse_authentication_results(
        'MX.Ville.Gouv.Fr 1; dkim/1=pass (2048-bit key; "quoted") header.d=bretagne.pref.gouv.fr '
        "header.i=@bretagne.pref.gouv.fr; spf = fail smtp.mailfrom=x@evil.example; "
        'dmarc=pass (p=reject dis=none) header.from="bretagne.pref.gouv.fr"')
    assert parsed is not None and parsed.authserv_id == "mx.ville.gouv.fr"
    methods = {r.method: r for r in parsed.results}
    assert methods["dkim"].result == "pass" and methods["dkim"].prop("header.d") == "bretagne.pref.gouv.fr"
    assert methods["spf"].result == "fail" and methods["spf"].prop("smtp.mailfrom") == "x@evil.example"
    assert methods["dmarc"].prop("header.from") == "bretagne.pref.gouv.fr"


def test_none_and_empty() -> None:
    parsed = parse_authentication_results("mx.ville.gouv.fr; none")
    assert parsed is not None and parsed.results == ()
    assert parse_authentication_results("   ") is None


def test_organisational_domain_and_relaxed_alignment() -> None:
    assert organisational_domain("mail.bretagne.pref.gouv.fr") == "pref.gouv.fr"
    assert organisational_domain("smtp.region-bretagne.fr") == "region-bretagne.fr"
    assert aligned("mail.region-bretagne.fr", "region-bretagne.fr")
    assert aligned("bounce@mail.region-bretagne.fr", "region-bretagne.fr")
    assert not aligned("region-bretagne.fr.evil.example", "region-bretagne.fr")
    assert not aligned(None, "region-bretagne.fr")


def test_dmarc_pass_from_a_trusted_server() -> None:
    assert authenticated(["mx.ville.gouv.fr; dmarc=pass header.from=bretagne.pref.gouv.fr"], TRUSTED, FROM) == "dmarc"


def test_dmarc_pass_for_another_domain_does_not_count() -> None:
    assert authenticated(["mx.ville.gouv.fr; dmarc=pass header.from=evil.example"], TRUSTED, FROM) is None


def test_dkim_must_be_aligned_with_the_from_domain() -> None:
    assert authenticated(["mx.ville.gouv.fr; dkim=pass header.d=evil.example"], TRUSTED, FROM) is None
    assert authenticated(["mx.ville.gouv.fr; dkim=pass header.d=pref.gouv.fr"], TRUSTED, FROM) == "dkim"
    assert authenticated(["mx.ville.gouv.fr; dkim=pass header.i=@bretagne.pref.gouv.fr"], TRUSTED, FROM) == "dkim"


def test_spf_must_be_aligned_with_the_from_domain() -> None:
    assert authenticated(["mx.ville.gouv.fr; spf=pass smtp.mailfrom=bounces@evil.example"], TRUSTED, FROM) is None
    assert authenticated(["mx.ville.gouv.fr; spf=pass smtp.mailfrom=" + FROM], TRUSTED, FROM) == "spf"


def test_failures_do_not_count() -> None:
    header = ("mx.ville.gouv.fr; dmarc=fail; dkim=fail header.d=bretagne.pref.gouv.fr; "
              "spf=softfail smtp.mailfrom=" + FROM)
    assert authenticated([header], TRUSTED, FROM) is None


def test_headers_from_untrusted_servers_are_ignored() -> None:
    forged = "mx.pirate.example; dmarc=pass header.from=bretagne.pref.gouv.fr"
    assert authenticated([forged], TRUSTED, FROM) is None
    assert authenticated([forged], (), FROM) is None


def test_only_the_topmost_header_of_a_trusted_server_counts() -> None:
    ours = "mx.ville.gouv.fr; dmarc=fail header.from=bretagne.pref.gouv.fr"
    forged_below = "mx.ville.gouv.fr; dmarc=pass header.from=bretagne.pref.gouv.fr"  # written by the sender
    assert authenticated([ours, forged_below], TRUSTED, FROM) is None


def test_no_from_address() -> None:
    assert authenticated(["mx.ville.gouv.fr; dmarc=pass"], TRUSTED, None) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=5), st.one_of(st.none(), st.text(max_size=60)))
def test_random_headers_never_raise(values: list[str], sender: str | None) -> None:
    for value in values:
        parse_authentication_results(value)
    assert authenticated(values, TRUSTED, sender) in (None, "dmarc", "dkim", "spf")
