"""One function per command: read the arguments, call the service, print the result."""

from __future__ import annotations

import argparse
import json
import smtplib
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from intake import pipeline
from intake.app import build_services, make_logger, resolve_db_url
from intake.config import PARIS, Campaign, Settings
from intake.journey import Delivery, Services
from intake.output import Printer
from notifier.calendar import campaign_states
from notifier.template_workbook import build_template
from parsers import catalogue
from parsers.check import check_workbook, limit_issue
from parsers.limits import read_limits
from parsers.messages import make_issue
from parsers.model import UnreadableFile
from parsers.narrative import analyse_narrative, extract_text
from parsers.regions import match_region
from parsers.sniff import kind_of, sniff
from store import queries


class UsageError(Exception):
    """A command called with arguments that cannot work (unknown campaign, missing file...)."""


def _campaign(settings: Settings, campaign_id: str | None, now: datetime | None = None) -> Campaign:
    if campaign_id:
        try:
            return settings.campaign(campaign_id)
        except KeyError:
            known = ", ".join(c.id for c in settings.campaigns)
            raise UsageError(f"campagne inconnue « {campaign_id} » (campagnes : {known})") from None
    return settings.campaign_for(now or datetime.now(UTC))


def _services(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> Services:
    return build_services(settings, resolve_db_url(args.db, settings, environ), make_logger())


# ---------------------------------------------------------------------- check


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
            "unreadable_file", file=path.name, reason=exc.reason)
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
    campaign = _campaign(settings, args.campaign)
    if args.region and args.region not in catalogue.all_region_codes():
        raise UsageError(f"code de région inconnu « {args.region} »")
    out, worst = Printer(), 0
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path} : {exc.strerror}") from exc
        result = check_file(path, data, settings, campaign, args.region)
        worst = max(worst, 0 if result["verdict"] == "accepted" else 1)
        if args.json:
            out.json(result)
            continue
        region = catalogue.region_name(result["region"]) if result["region"] else "région non indiquée"
        out.line(f"{path} ({result['kind']}, {region}) : {out.word(result['verdict'])}")
        out.issues(result["issues"])
    return worst


# ---------------------------------------------------------------------- ingest


def cmd_ingest(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = _services(args, settings, environ)
    out, worst = Printer(), 0
    for path in args.files:
        try:
            raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path} : {exc.strerror}") from exc
        received = args.received_at or datetime.now(UTC)
        result = pipeline.ingest(services, Delivery(raw=raw, received_at=received, channel="cli"))
        worst = max(worst, 0 if result.outcome in ("accepted", "ignored", "duplicate") else 1)
        if args.json:
            out.json({"file": str(path), **result.as_dict()})
            continue
        region = catalogue.region_name(result.region) if result.region else "-"
        out.line(f"{path} : message #{result.inbound_id} {out.word(result.outcome)} (région {region}, "
                 f"dossier {out.word(result.dossier or '-')})")
        out.issues([i.as_dict() for i in result.issues])
        if result.reply:
            out.line(f"  réponse à {', '.join(result.reply.to)} : « {result.reply.subject} »")
    return worst


def cmd_reprocess(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = _services(args, settings, environ)
    ids = list(args.ids)
    if args.failed:
        with services.sessions() as session:
            ids += [m.id for m in queries.failed_messages(session)]
    results = [pipeline.reprocess(services, i) for i in ids] if ids else pipeline.recover(services)
    out = Printer()
    for result in results:
        if args.json:
            out.json(result.as_dict())
        else:
            out.line(f"message #{result.inbound_id} : {out.word(result.outcome)} {result.reason}")
    return 1 if any(r.outcome == "failed" for r in results) else 0


# ---------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now = args.now or datetime.now(UTC)
    campaign = _campaign(settings, args.campaign, now)
    services = _services(args, settings, environ)
    with services.sessions() as session:
        states = campaign_states(session, settings, campaign, now)
    out = Printer()
    if args.json:
        out.json({"campaign": campaign.id, "deadline": campaign.deadline.isoformat(), "now": now.isoformat(),
                  "regions": [s.as_dict() for s in states]})
        return 0
    out.line(f"Campagne {campaign.id} (bilan {campaign.year}) – date limite {campaign.deadline:%d/%m/%Y}"
             f" – situation au {now.astimezone(PARIS):%d/%m/%Y %H:%M}")
    rows = []
    for st in states:
        notes = [w for w, on in (("exemptée", st.exempt), (f"prolongée au {st.deadline:%d/%m/%Y}", st.extended),
                                 (f"en retard de {st.days_late} j", st.late), ("reçu en retard", st.received_late))
                 if on]
        last = st.last_received.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if st.last_received else "-"
        rows.append([st.code, st.name, st.dossier, last, str(st.open_errors), ", ".join(notes)])
    out.table(["Code", "Région", "Dossier", "Dernier envoi", "Erreurs", "Remarques"], rows, coloured=2)
    return 0


def cmd_exempt(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = _campaign(settings, args.campaign)
    region = _region_code(args.region, campaign)
    services = _services(args, settings, environ)
    with services.sessions.begin() as session:
        queries.set_exempt(session, campaign.id, region, not args.undo, actor=args.by)
    verb = "n'est plus exemptée" if args.undo else "est exemptée"
    print(f"{catalogue.region_name(region, campaign.geography)} {verb} pour la campagne {campaign.id}")
    return 0


def cmd_extend(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = _campaign(settings, args.campaign)
    region = _region_code(args.region, campaign)
    services = _services(args, settings, environ)
    with services.sessions.begin() as session:
        queries.set_extension(session, campaign.id, region, args.until, actor=args.by)
    name = catalogue.region_name(region, campaign.geography)
    change = "ramenée à celle de la campagne" if args.until is None else f"prolongée au {args.until:%d/%m/%Y}"
    print(f"{name} : date limite {change}")
    return 0


def _region_code(text: str, campaign: Campaign) -> str:
    region = match_region(text, campaign.geography)
    if region is None:
        raise UsageError(f"région inconnue « {text} » pour la campagne {campaign.id}")
    return region.code


# ---------------------------------------------------------------------- template


def cmd_template(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = _campaign(settings, args.campaign)
    name = None
    if args.region:
        name = catalogue.region_name(args.region, campaign.geography)
        if name is None:
            raise UsageError(f"la région « {args.region} » n'existe pas dans la géographie {campaign.geography}")
    data = build_template(region_code=args.region, region_name=name, campaign_id=campaign.id, year=campaign.year)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"modèle écrit : {args.output} ({name or 'région à renseigner'}, bilan {campaign.year})")
    return 0


# ---------------------------------------------------------------------- serve / send


def cmd_serve(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from intake.serve import run

    services = _services(args, settings, environ)
    return run(services, receiver=not args.no_receiver)


def cmd_health(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """Reads the health file ``serve`` refreshes; exit 0 only if it is fresh and every channel is up."""
    from intake.serve import health_path

    path = health_path(settings.data_dir)
    out = Printer()
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if args.json:
            out.json({"healthy": False, "reason": "service not running (no health file)", "path": str(path)})
        else:
            out.line(f"service arrêté ou jamais démarré ({path} introuvable)")
        return 1
    age = (datetime.now(UTC) - datetime.fromisoformat(report["updated_at"])).total_seconds()
    down = [name for name, ch in report["channels"].items() if not ch.get("up", ch.get("connected", False))]
    healthy = age <= args.max_age and not down
    if args.json:
        out.json({"healthy": healthy, "age_seconds": round(age, 1), "down": down, **report})
        return 0 if healthy else 1
    out.line(f"service {'en bonne santé' if healthy else 'EN DIFFICULTÉ'} (pid {report['pid']}, "
             f"rapport d'il y a {age:.0f} s)")
    for name, channel in report["channels"].items():
        state = "actif" if name not in down else "INACTIF"
        details = ", ".join(f"{k}={v}" for k, v in channel.items() if k not in ("up", "connected"))
        out.line(f"  {name:<9} {state}  {details}")
    out.line(f"  en attente : {report['backlog']}")
    out.line(f"  messages traités depuis le démarrage : {report['processed']}")
    out.line(f"  dernière erreur : {report['last_error'] or 'aucune'}")
    return 0 if healthy else 1


def cmd_send(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    msg = EmailMessage()
    msg["From"] = args.sender
    msg["To"] = args.to or settings.mailbox_address
    msg["Subject"] = args.subject
    msg["Message-ID"] = make_msgid(domain=args.sender.rpartition("@")[2] or "localhost")
    msg.set_content(args.body)
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path} : {exc.strerror}") from exc
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=path.name)
    host, port = args.host or settings.receiver.host, args.port or settings.receiver.port
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        print(f"envoi impossible vers {host}:{port} : {exc}", file=sys.stderr)
        return 1
    print(f"message envoyé à {msg['To']} via {host}:{port} ({msg['Message-ID']})")
    return 0
