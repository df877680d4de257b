"""Dossiers: where each region stands, exemptions, extensions, and the workbook to fill.

    conventions-intake status [--campaign ID] [--now DATETIME] [--json]
    conventions-intake exempt REGION [--undo] [--campaign ID] [--by WHO]
    conventions-intake extend REGION --until DATE [--campaign ID] [--by WHO]   (grants a pending request)
    conventions-intake template [--region CODE] [--campaign ID] -o FILE.xlsx
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from intake.cli.argtypes import parse_day, parse_when
from intake.cli.common import Subparsers, UsageError, campaign_named, open_services, region_named
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Campaign, Settings
from intake.pipeline.requests import grant_pending
from notifier.calendar import campaign_states, extension_refusal, region_notes
from notifier.last_year import LastYear, last_year
from notifier.rendering import fr_day, fr_moment
from notifier.template_workbook import build_template
from parsers.reference import catalogue
from store.queries.dossiers import dossiers_by_region, latest_submission, set_exempt, set_extension


def register(sub: Subparsers) -> None:
    p = sub.add_parser("status", help="état des dossiers de chaque région")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--now", type=parse_when, help="situation à cette date (défaut : maintenant)")
    p.add_argument("--json", action="store_true", help="un seul objet JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("exempt", help="exempter une région d'une campagne (ou lever l'exemption)")
    p.add_argument("region", help="nom ou code INSEE de la région")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--undo", action="store_true", help="lever l'exemption")
    p.add_argument("--by", default="cli", help="qui accorde (historique du dossier)")
    p.add_argument("--now", type=parse_when, help="moment inscrit dans l'historique (défaut : maintenant)")
    p.set_defaults(handler=cmd_exempt)

    p = sub.add_parser("extend", help="prolonger la date limite d'une région (ou annuler la prolongation)")
    p.add_argument("region", help="nom ou code INSEE de la région")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", type=parse_day, help="nouvelle date limite, JJ/MM/AAAA ou AAAA-MM-JJ")
    when.add_argument("--undo", action="store_true", help="annuler la prolongation : la date de la campagne")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--by", default="cli", help="qui accorde (historique du dossier)")
    p.add_argument("--now", type=parse_when, help="moment de la décision (défaut : maintenant)")
    p.set_defaults(handler=cmd_extend)

    p = sub.add_parser("template", help="écrire le modèle de tableau de bord (annexe 2) d'une région")
    p.add_argument("--region", help="code INSEE de la région (défaut : région à renseigner)")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FICHIER.xlsx", help="fichier à écrire")
    p.set_defaults(handler=cmd_template)


def cmd_status(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now = args.now or utcnow()
    campaign = campaign_named(settings, args.campaign, now)
    services = open_services(args, settings, environ)
    with services.sessions() as session:
        states = campaign_states(session, settings, campaign, now)
    out = Printer()
    if args.json:
        out.json({"campaign": campaign.id, "deadline": campaign.deadline.isoformat(), "now": now.isoformat(),
                  "regions": [s.as_dict() for s in states]})
        return 0
    out.line(f"Campagne {campaign.id} (bilan {campaign.year}) – date limite {fr_day(campaign.deadline)}"
             f" – situation au {fr_moment(now)}")
    rows = [[st.code, st.name, st.dossier, fr_moment(st.last_received) if st.last_received else "-",
             str(st.open_errors), region_notes(st, with_errors=False)] for st in states]
    out.table(["Code", "Région", "Dossier", "Dernier envoi", "Erreurs", "Remarques"], rows, coloured=2)
    return 0


def cmd_exempt(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = campaign_named(settings, args.campaign)
    region = region_named(args.region, campaign)
    services = open_services(args, settings, environ)
    with services.sessions.begin() as session:
        set_exempt(session, campaign.id, region, not args.undo, actor=args.by, at=args.now)
    verb = "n'est plus exemptée" if args.undo else "est exemptée"
    print(f"{catalogue.region_name(region, campaign.geography)} {verb} pour la campagne {campaign.id}")
    return 0


def cmd_extend(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = campaign_named(settings, args.campaign, args.now)
    region = region_named(args.region, campaign)
    if args.until is not None and (refusal := extension_refusal(campaign, args.until)):
        raise UsageError(refusal)
    services = open_services(args, settings, environ)
    with services.sessions.begin() as session:
        dossier = set_extension(session, campaign.id, region, args.until, actor=args.by, at=args.now)
        answered = [] if args.until is None else grant_pending(session, settings, dossier, args.until, actor=args.by,
                                                                now=args.now or utcnow())
    name = catalogue.region_name(region, campaign.geography)
    change = "ramenée à celle de la campagne" if args.until is None else f"prolongée au {fr_day(args.until)}"
    print(f"{name} : date limite {change}")
    if answered:
        print(f"demande de délai de la région accordée : réponse en file d'envoi ({len(answered)} message(s))")
    return 0


def cmd_template(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    campaign = campaign_named(settings, args.campaign)
    name = None
    if args.region:
        name = catalogue.region_name(args.region, campaign.geography)
        if name is None:
            raise UsageError(f"la région « {args.region} » n'existe pas dans la géographie {campaign.geography}")
    previous = _last_year(args, settings, environ, campaign) if args.region else None
    observations = previous.observations() if previous is not None else {}
    data = build_template(region_code=args.region, region_name=name, campaign_id=campaign.id, year=campaign.year,
                          observations=observations)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"modèle écrit : {args.output} ({name or 'région à renseigner'}, bilan {campaign.year})")
    if previous is not None and observations:
        print(f"observations du bilan {previous.campaign.year} reprises comme point de départ "
              f"({len(observations)} indicateurs) ; les résultats sont à saisir")
    return 0


def _last_year(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str],
               campaign: Campaign) -> LastYear | None:
    """The region's return(s) of the previous campaign, when it has sent no workbook in ``campaign`` yet
    (the store is only opened when there is a previous campaign)."""
    if settings.previous_campaign(campaign) is None:
        return None
    services = open_services(args, settings, environ)
    with services.sessions() as session:
        dossier = dossiers_by_region(session, campaign.id).get(args.region)
        if dossier is not None and latest_submission(session, dossier.id, "workbook") is not None:
            return None
        return last_year(session, settings, campaign, args.region)
