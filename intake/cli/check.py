"""``check``: a verdict on workbooks and narratives, without storing anything.

    conventions-intake check FILE... [--region CODE] [--campaign ID] [--json]

A .zip is opened as the service opens one attached to a mail (same limits, same messages): each
file inside gets its verdict, named "bilan.zip › tableau.xlsx".
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intake.cli.common import Subparsers, UsageError, campaign_named, read_file
from intake.cli.output import Printer
from intake.config.settings import Campaign, Settings
from parsers.documents.narrative import analyse_narrative
from parsers.documents.reader import extract_text
from parsers.issues import make_issue, reason_words
from parsers.limits import archive_limits, read_limits
from parsers.mail.archives import archive_kind
from parsers.mail.unwrap import unwrap
from parsers.model import Attachment, UnreadableFile
from parsers.reference import catalogue
from parsers.sniff import kind_of, sniff
from parsers.workbook.check import check_workbook, limit_issue


def register(sub: Subparsers) -> None:
    p = sub.add_parser("check", help="valider des fichiers sans rien enregistrer")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--region", help="code INSEE de la région attendue")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--json", action="store_true", help="un objet JSON par fichier et par ligne")
    p.set_defaults(handler=cmd_check)


def check_file(path: Path, data: bytes, settings: Settings, campaign: Campaign, region: str | None) -> dict[str, Any]:
    """The verdict on one file, as ``check --json`` prints it (the configured limits apply)."""
    limits = read_limits(settings.limits)
    sniffed = sniff(path.name, "application/octet-stream", data)
    kind = kind_of(sniffed)
    result: dict[str, Any] = {"file": str(path), "kind": kind, "region": region, "verdict": "accepted",
                              "values": {}, "observations": {}, "issues": []}
    if kind == "workbook" or kind == "unknown":
        wb = check_workbook(data, path.name, year=campaign.year, strict=campaign.strict,
                            expected_region=region, geography=campaign.geography, limits=limits)
        result.update({
            "region": wb.region_code or region,
            "verdict": wb.verdict,
            "values": {k: list(e.value) if isinstance(e.value, tuple) else e.value for k, e in wb.entries.items()},
            "observations": {k: e.observation for k, e in wb.entries.items()},
            "issues": [i.as_dict() for i in wb.issues],
        })
        return result
    try:
        report = analyse_narrative(extract_text(data, sniffed, limits=limits), path.name)
    except UnreadableFile as exc:
        issue = limit_issue(path.name, exc.reason, exc.detail, limits) or make_issue(
            "unreadable_file", file=path.name, reason=reason_words(exc.reason))
        result.update({"verdict": "rejected", "issues": [issue.as_dict()]})
        return result
    result.update({
        "points_covered": list(report.points_covered),
        "points_missing": list(report.points_missing),
        "conventions": list(report.conventions),
        "issues": [i.as_dict() for i in report.issues],
        "verdict": "rejected" if any(i.severity == "error" for i in report.issues) else "accepted",
    })
    return result


def cmd_check(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = campaign_named(settings, args.campaign)
    if args.region and args.region not in catalogue.all_region_codes():
        raise UsageError(f"code de région inconnu « {args.region} »")
    out, worst = Printer(), 0
    for path, data, archive_issues in _opened(args.files, settings):
        if archive_issues is not None:  # an archive we could not (wholly) open
            if not archive_issues:
                continue
            result: dict[str, Any] = {"file": str(path), "kind": "archive", "region": args.region,
                                      "verdict": "rejected" if any(i.severity == "error" for i in archive_issues)
                                      else "accepted", "issues": [i.as_dict() for i in archive_issues]}
        else:
            result = check_file(path, data, settings, campaign, args.region)
        worst = max(worst, 0 if result["verdict"] == "accepted" else 1)
        if args.json:
            out.json(result)
            continue
        region = catalogue.region_name(result["region"]) if result["region"] else "région non indiquée"
        out.line(f"{path} ({result['kind']}, {region}) : {out.word(result['verdict'])}")
        out.issues(result["issues"])
    return worst


def _opened(paths: list[Path], settings: Settings) -> list[tuple[Path, bytes, list[Any] | None]]:
    """Each file to check, with an archive replaced by the files it holds and, after them, the
    archive itself with its issues (None for a file to check)."""
    found: list[tuple[Path, bytes, list[Any] | None]] = []
    for path in paths:
        data = read_file(path)
        attachment = Attachment(path.name, "application/octet-stream", data)
        if archive_kind(attachment) is None:
            found.append((path, data, None))
            continue
        opened = unwrap((attachment,), archive_limits(settings.limits), settings.limits.max_attachment_bytes)
        found += [(path.parent / (inner.filename or "(sans nom)"), inner.data, None) for inner in opened.attachments]
        found.append((path, b"", list(opened.issues)))
    return found
