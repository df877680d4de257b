#!/usr/bin/env bash
# The package as a user gets it: a wheel built from this checkout, installed in a fresh virtual
# environment outside the checkout (what pipx, a container image or `pip install .` does), then the
# installed `conventions-intake` run on a generated workbook (`check`) and a generated message
# (`ingest`). An editable install can hide a missing package or data file; this cannot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/conventions-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "wheel-check: building the wheel"
"$python" -m pip wheel -q --no-deps -w "$work/dist" "$root" 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
# (pip's own notes about this machine's package index locations are not the build's business)
if grep -i "warning" "$work/build.log" | grep -qv "Location '.*' is ignored"; then
  echo "wheel-check: the build printed warnings:" >&2; cat "$work/build.log" >&2; exit 1
fi
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$work"/dist/*.whl >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; exit 1; }
cd "$work"  # nothing of the checkout is importable from here
bin="$work/venv/bin"

"$bin/python" - <<'PY'
import intake, parsers, notifier, store, templates
for package in (intake, parsers, notifier, store, templates):
    assert "site-packages" in package.__file__, f"{package.__name__} imported from {package.__file__}"
PY

"$bin/conventions-intake" template --region 53 -o blank.xlsx >/dev/null
status=0; "$bin/conventions-intake" check blank.xlsx --json >blank.json || status=$?
[ "$status" = 1 ] && grep -q '"empty_return"' blank.json || { echo "wheel-check: blank workbook not rejected" >&2; cat blank.json >&2; exit 1; }

"$bin/python" - <<'PY'
from email.message import EmailMessage
from pathlib import Path

from notifier.template_workbook import build_template
from parsers.reference import catalogue

SAMPLE = {"count": 12, "percent": 25, "count_pair": "4 / 2", "text": "Avancement conforme au calendrier."}
local = catalogue.local_indicators()
values = {ind.id: SAMPLE[ind.unit] for ind in local}
observations = {ind.id: f"Source : services de l'État ({ind.id})." for ind in local}
data = build_template(region_code="53", region_name="Bretagne", campaign_id="bilan-2013", year=2013,
                      values=values, observations=observations)
Path("filled.xlsx").write_bytes(data)
msg = EmailMessage()
msg["From"], msg["To"] = "sgar@bretagne.example.org", "conventions@ville.example.org"
msg["Subject"], msg["Message-ID"] = "Bilan 2013 Bretagne", "<wheel-check@bretagne.example.org>"
msg.set_content("Bonjour,\n\nVeuillez trouver ci-joint notre tableau de bord.\n\nCordialement,")
msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="bretagne.xlsx")
Path("return.eml").write_bytes(bytes(msg))
PY
"$bin/conventions-intake" check filled.xlsx --region 53 --json >filled.json \
  || { echo "wheel-check: filled workbook not accepted" >&2; cat filled.json >&2; exit 1; }
"$bin/conventions-intake" ingest return.eml --received-at 2014-05-02T10:00 --json >ingest.json 2>ingest.log \
  || { echo "wheel-check: message not accepted" >&2; cat ingest.json >&2; exit 1; }
grep -q '"outcome": "accepted"' ingest.json
ls var/outbox/*-reply.eml >/dev/null
echo "wheel-check: the installed package checked a workbook and answered a message"
