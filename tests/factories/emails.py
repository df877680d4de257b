"""Raw e-mails (bytes) as the clients the regions use really write them.

``build_email(style=...)``:

* ``"outlook"``: multipart/mixed > multipart/alternative, Windows-1252 quoted-printable text and
  MsoNormal HTML, Thread-Index/Thread-Topic and X-MS headers, RFC 2047 ISO-8859-1 names put
  inside quotes (``name="=?iso-8859-1?Q?...?="``), as Outlook/Exchange does;
* ``"thunderbird"``: UTF-8 8bit text/plain with format=flowed, User-Agent, RFC 2231 file names
  (``filename*=UTF-8''...``, continuations for long names) and RFC 2047 ``name=``;
* ``"webmail"``: Gmail-like multipart/alternative UTF-8 quoted-printable with a ``<div dir="ltr">``
  HTML, attachments typed application/octet-stream with raw UTF-8 names; ``html_only=True``
  gives a Roundcube-like message whose only body is HTML.

``forward`` (attached as message/rfc822), ``inline_forward`` (below a client's separator),
``out_of_office_reply`` and ``bounce`` build the other kinds of message the service
receives. Files sent by LibreOffice users are plain attachments with OpenDocument content types
(see ``ODS``/``ODT``).
"""

from __future__ import annotations

import base64
import quopri
import uuid
from collections.abc import Sequence
from html import escape
from typing import Literal
from urllib.parse import quote

Style = Literal["outlook", "thunderbird", "webmail"]
AttachmentSpec = tuple[str, bytes, str]  # file name, content, content type

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODT = "application/vnd.oasis.opendocument.text"
PDF = "application/pdf"
OCTET = "application/octet-stream"

AUTO = "auto"  # message_id=AUTO: generate one; message_id=None: no Message-ID header
DEFAULT_SENDER = "Préfecture de la région Bretagne – SGAR <sgar-politique-ville@bretagne.pref.gouv.fr>"
DEFAULT_TO = "Conventions politique de la ville <conventions@ville.gouv.fr>"
DEFAULT_SUBJECT = "Bilan 2013 des conventions interministérielles – région Bretagne"
DEFAULT_BODY = (
    "Bonjour,\n\n"
    "Veuillez trouver ci-joint le tableau de bord de la région ainsi que l'analyse qualitative "
    "demandée par l'instruction du 26 mars 2014.\n\n"
    "Bien cordialement,\n\n"
    "Marie Le Goff\nChargée de mission politique de la ville\nSGAR Bretagne"
)
DATE = "Tue, 13 May 2014 10:42:17 +0200"
CRLF = "\r\n"


# --------------------------------------------------------------------------- encoding helpers


def encoded_word(text: str, charset: str = "utf-8", encoding: str = "B") -> str:
    """RFC 2047 encoded words for ``text`` (left as is when ASCII), split into short chunks."""
    if text.isascii():
        return text
    words: list[str] = []
    chunk_size = 20
    for start in range(0, len(text), chunk_size):
        data = text[start : start + chunk_size].encode(charset)
        if encoding == "B":
            words.append(f"=?{charset.upper()}?B?{base64.b64encode(data).decode('ascii')}?=")
        else:
            q = quopri.encodestring(data, quotetabs=True, header=True).decode("ascii").replace("=\n", "")
            words.append(f"=?{charset}?Q?{q}?=")
    return "\r\n ".join(words)


def _address(display: str, charset: str = "utf-8", encoding: str = "B") -> str:
    if "<" not in display:
        return display
    name, _, rest = display.partition("<")
    name = name.strip().strip('"')
    if not name:
        return f"<{rest}"
    if name.isascii():
        return f'"{name}" <{rest}'
    return f"{encoded_word(name, charset, encoding)} <{rest}"


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return CRLF.join(text[i : i + 76] for i in range(0, len(text), 76))


def _qp(text: str, charset: str) -> str:
    return quopri.encodestring(text.replace("\r\n", "\n").encode(charset)).decode("ascii").replace("\n", CRLF)


def _boundary(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def _html_of(body: str, outlook: bool) -> str:
    paragraphs = body.replace("\r\n", "\n").split("\n\n")
    if outlook:
        inner = "".join(
            f'<p class="MsoNormal">{escape(p).replace(chr(10), "<br>")}<o:p></o:p></p>\r\n'
            '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\r\n'
            for p in paragraphs
        )
        return (
            '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>\r\n'
            '<meta http-equiv="Content-Type" content="text/html; charset=Windows-1252">\r\n'
            "<style><!-- p.MsoNormal {margin:0cm; font-size:11.0pt; font-family:\"Calibri\",sans-serif;} --></style>"
            f'\r\n</head><body lang="FR" link="#0563C1"><div class="WordSection1">\r\n{inner}</div></body></html>'
        )
    inner = "<br>".join(f"<div>{escape(p).replace(chr(10), '<br>')}</div>" for p in paragraphs)
    return f'<div dir="ltr">{inner}</div>'


def _flowed(text: str, width: int = 72) -> str:
    """format=flowed: long lines wrapped with a trailing space marking a soft break."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            if cut <= 0:
                break
            out.append(line[: cut + 1])
            line = line[cut + 1 :]
        out.append(line)
    return CRLF.join(out)


def _body_charset(text: str) -> str:
    try:
        text.encode("cp1252")
        return "Windows-1252"
    except UnicodeEncodeError:
        return "utf-8"


# --------------------------------------------------------------------------- parts


def _part(headers: Sequence[tuple[str, str]], payload: str) -> str:
    return CRLF.join(f"{k}: {v}" for k, v in headers) + CRLF + CRLF + payload


def _multipart(subtype: str, parts: Sequence[str], boundary: str, preamble: str = "") -> str:
    lines = [preamble] if preamble else []
    for part in parts:
        lines.append(f"--{boundary}{CRLF}{part}")
    lines.append(f"--{boundary}--{CRLF}")
    return CRLF.join(lines)


def _outlook_attachment(name: str, data: bytes, ctype: str) -> str:
    encoded = encoded_word(name, "iso-8859-1", "Q") if _latin1_ok(name) else encoded_word(name)
    return _part(
        [
            ("Content-Type", f'{ctype};{CRLF}\tname="{encoded}"'),
            ("Content-Description", encoded),
            ("Content-Disposition", f'attachment;{CRLF}\tfilename="{encoded}"; size={len(data)};{CRLF}'
                                    f'\tcreation-date="{DATE}";{CRLF}\tmodification-date="{DATE}"'),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(data),
    )


def _latin1_ok(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
        return True
    except UnicodeEncodeError:
        return False


def rfc2231(name: str, param: str = "filename", chunk: int = 30) -> str:
    """``filename*=UTF-8''...``, with ``filename*0*=...; filename*1*=...`` continuations when long."""
    quoted = quote(name, safe="")
    if len(quoted) <= chunk + 10:
        return f"{param}*=UTF-8''{quoted}"
    pieces = [quoted[i : i + chunk] for i in range(0, len(quoted), chunk)]
    # never split inside a %XX escape
    fixed: list[str] = []
    carry = ""
    for piece in pieces:
        piece = carry + piece
        cut = piece.rfind("%", len(piece) - 2)
        carry, piece = (piece[cut:], piece[:cut]) if cut >= 0 else ("", piece)
        fixed.append(piece)
    if carry:
        fixed.append(carry)
    params = [f"{param}*0*=UTF-8''{fixed[0]}"]
    params += [f"{param}*{i}*={p}" for i, p in enumerate(fixed[1:], start=1)]
    return f";{CRLF} ".join(params)


def _thunderbird_attachment(name: str, data: bytes, ctype: str) -> str:
    return _part(
        [
            ("Content-Type", f'{ctype}; name="{encoded_word(name)}"'),
            ("Content-Disposition", f"attachment;{CRLF} {rfc2231(name)}"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _b64(data),
    )


def _webmail_attachment(name: str, data: bytes, ctype: str) -> str:
    ident = f"f_{uuid.uuid4().hex[:8]}"
    return _part(
        [
            ("Content-Type", f'{OCTET}; name="{name}"'),  # webmails often lose the real type
            ("Content-Disposition", f'attachment; filename="{name}"'),
            ("Content-Transfer-Encoding", "base64"),
            ("X-Attachment-Id", ident),
            ("Content-ID", f"<{ident}>"),
        ],
        _b64(data),
    )


# --------------------------------------------------------------------------- messages


def build_email(
    *,
    sender: str = DEFAULT_SENDER,
    to: str = DEFAULT_TO,
    subject: str = DEFAULT_SUBJECT,
    body: str = DEFAULT_BODY,
    attachments: Sequence[AttachmentSpec] = (),
    style: Style = "outlook",
    message_id: str | None = AUTO,
    extra_headers: Sequence[tuple[str, str]] = (),
    date: str = DATE,
    html_only: bool = False,
) -> bytes:
    """A complete raw e-mail as ``style`` would send it."""
    domain = sender.rpartition("@")[2].rstrip(">") or "example.org"
    if message_id == AUTO:
        message_id = {
            "outlook": f"<PR1P264MB{uuid.uuid4().hex[:12].upper()}@PR1P264MB1234.FRAP264.PROD.OUTLOOK.COM>",
            "thunderbird": f"<{uuid.uuid4()}@{domain}>",
            "webmail": f"<CAF{uuid.uuid4().hex}@mail.gmail.com>",
        }[style]
    builder = {"outlook": _outlook, "thunderbird": _thunderbird, "webmail": _webmail}[style]
    headers, payload = builder(sender, to, subject, body, attachments, html_only)
    if message_id is not None:
        headers.insert(3, ("Message-ID", message_id))
    headers.insert(0, ("Date", date))
    headers.extend(extra_headers)
    return _part(headers, payload).encode("utf-8", "surrogateescape")


def _outlook(sender: str, to: str, subject: str, body: str, attachments: Sequence[AttachmentSpec],
             html_only: bool) -> tuple[list[tuple[str, str]], str]:
    charset = _body_charset(body + subject)
    hcharset = "iso-8859-1" if _latin1_ok(subject + sender) else "utf-8"
    alt_boundary = _boundary("_000_PR1P264MB")
    alternative = _multipart("alternative", [
        _part([("Content-Type", f'text/plain; charset="{charset}"'),
               ("Content-Transfer-Encoding", "quoted-printable")], _qp(body, charset)),
        _part([("Content-Type", f'text/html; charset="{charset}"'),
               ("Content-Transfer-Encoding", "quoted-printable")], _qp(_html_of(body, True), charset)),
    ], alt_boundary)
    headers = [
        ("From", _address(sender, hcharset, "Q")),
        ("To", _address(to, hcharset, "Q")),
        ("Subject", encoded_word(subject, hcharset, "Q")),
        ("Thread-Topic", encoded_word(subject, hcharset, "Q")),
        ("Thread-Index", "AdBu8Gx3kQ2pU9YpQ0iV4F6m1ZxW7g=="),
        ("Accept-Language", "fr-FR, en-US"),
        ("Content-Language", "fr-FR"),
        ("X-MS-Has-Attach", "yes" if attachments else ""),
        ("X-MS-TNEF-Correlator", ""),
        ("x-originating-ip", "[10.164.12.8]"),
        ("X-MS-Exchange-Organization-AuthAs", "Internal"),
        ("MIME-Version", "1.0"),
    ]
    if not attachments:
        headers.append(("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_boundary}"'))
        return headers, alternative
    mixed_boundary = _boundary("_004_PR1P264MB")
    parts = [_part([("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_boundary}"')], alternative)]
    parts += [_outlook_attachment(*a) for a in attachments]
    headers.append(("Content-Type", f'multipart/mixed;{CRLF}\tboundary="{mixed_boundary}"'))
    return headers, _multipart("mixed", parts, mixed_boundary)


def _thunderbird(sender: str, to: str, subject: str, body: str, attachments: Sequence[AttachmentSpec],
                 html_only: bool) -> tuple[list[tuple[str, str]], str]:
    headers = [
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"),
        ("Content-Language", "fr"),
        ("To", _address(to)),
        ("From", _address(sender)),
        ("Subject", encoded_word(subject, "UTF-8", "Q")),
    ]
    text_part_headers = [("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
                         ("Content-Transfer-Encoding", "8bit")]
    flowed = _flowed(body)
    if not attachments:
        headers += text_part_headers
        return headers, flowed
    boundary = _boundary("------------")
    parts = [_part(text_part_headers, flowed)] + [_thunderbird_attachment(*a) for a in attachments]
    headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
    return headers, _multipart("mixed", parts, boundary, "This is a multi-part message in MIME format.")


def _webmail(sender: str, to: str, subject: str, body: str, attachments: Sequence[AttachmentSpec],
             html_only: bool) -> tuple[list[tuple[str, str]], str]:
    headers = [
        ("MIME-Version", "1.0"),
        ("From", _address(sender)),
        ("To", _address(to)),
        ("Subject", encoded_word(subject)),
    ]
    html_part = _part([("Content-Type", 'text/html; charset="UTF-8"'),
                       ("Content-Transfer-Encoding", "quoted-printable")], _qp(_html_of(body, False), "utf-8"))
    if html_only:
        body_part = html_part
        body_type = None
    else:
        alt_boundary = _boundary("0000000000")
        body_part = _multipart("alternative", [
            _part([("Content-Type", 'text/plain; charset="UTF-8"'),
                   ("Content-Transfer-Encoding", "quoted-printable")], _qp(body, "utf-8")),
            html_part,
        ], alt_boundary)
        body_type = f'multipart/alternative; boundary="{alt_boundary}"'
    if not attachments:
        if body_type is None:
            headers += [("Content-Type", 'text/html; charset="UTF-8"'),
                        ("Content-Transfer-Encoding", "quoted-printable")]
            return headers, _qp(_html_of(body, False), "utf-8")
        headers.append(("Content-Type", body_type))
        return headers, body_part
    boundary = _boundary("0000000000")
    first = body_part if body_type is None else _part([("Content-Type", body_type)], body_part)
    parts = [first] + [_webmail_attachment(*a) for a in attachments]
    headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
    return headers, _multipart("mixed", parts, boundary)


def forward(
    original: bytes,
    *,
    sender: str = DEFAULT_SENDER,
    to: str = DEFAULT_TO,
    subject: str | None = None,
    note: str = "Bonjour,\n\nJe vous transfère le bilan reçu de la DDCS.\n\nCordialement,",
    message_id: str | None = AUTO,
) -> bytes:
    """``original`` forwarded as an attachment (message/rfc822), as Thunderbird and Outlook do."""
    boundary = _boundary("------------")
    parts = [
        _part([("Content-Type", "text/plain; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit")], note),
        _part([("Content-Type", 'message/rfc822; name="Bilan transmis.eml"'),
               ("Content-Disposition", 'attachment; filename="Bilan transmis.eml"'),
               ("Content-Transfer-Encoding", "8bit")],
              original.decode("utf-8", "surrogateescape")),
    ]
    headers = [
        ("Date", DATE),
        ("From", _address(sender)),
        ("To", _address(to)),
        ("Subject", encoded_word(subject or "Fwd: " + DEFAULT_SUBJECT)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
    ]
    if message_id is not None:
        headers.insert(1, ("Message-ID", f"<{uuid.uuid4()}@bretagne.pref.gouv.fr>" if message_id == AUTO
                           else message_id))
    return _part(headers, _multipart("mixed", parts, boundary)).encode("utf-8", "surrogateescape")


PREFECT = "Préfet de la région Bretagne <prefet@bretagne.pref.gouv.fr>"
ForwardingClient = Literal["gmail", "thunderbird", "outlook", "apple"]


def inline_forward(
    original_body: str,
    *,
    client: ForwardingClient = "gmail",
    sender: str = DEFAULT_SENDER,
    original_sender: str = PREFECT,
    original_subject: str = DEFAULT_SUBJECT,
    note: str = "Bonjour,\n\nJe vous transmets le message de M. le Préfet.\n\nCordialement,\nL'assistante du SGAR",
    attachments: Sequence[AttachmentSpec] = (),
) -> bytes:
    """A message forwarded inline (its text below the client's separator), as ``client`` writes it."""
    name, _, address = original_sender.partition(" <")
    address = address.rstrip(">")
    forwarding: dict[ForwardingClient, tuple[str, list[str], str, Style]] = {
        "gmail": ("---------- Forwarded message ---------",
                  [f"De : {name} <{address}>", "Date: lun. 12 mai 2014 à 17:05",
                   f"Subject: {original_subject}", f"To: <{DEFAULT_SENDER.partition('<')[2]}"],
                  "Fwd: " + original_subject, "webmail"),
        "thunderbird": ("-------- Message transféré --------",
                        [f"Sujet :\t{original_subject}", "Date :\tMon, 12 May 2014 17:05:12 +0200",
                         f"De :\t{name} <{address}>"],
                        "Fwd: " + original_subject, "thunderbird"),
        "outlook": ("", [f"De : {name} [mailto:{address}]", "Envoyé : lundi 12 mai 2014 17:05",
                         "À : SGAR Bretagne", f"Objet : {original_subject}"],
                    "TR : " + original_subject, "outlook"),
        "apple": ("Début du message réexpédié :",
                  [f"De: {name} <{address}>", f"Objet: {original_subject}", "Date: 12 mai 2014 à 17:05:12 UTC+2",
                   "À: SGAR Bretagne"],
                  "Fwd: " + original_subject, "thunderbird"),
    }
    separator, headers, subject, style = forwarding[client]
    block = "\n".join([*([separator] if separator else []), *headers])
    body = f"{note}\n\n{block}\n\n{original_body}"
    return build_email(sender=sender, subject=subject, body=body, attachments=attachments, style=style)


def out_of_office_reply(
    *,
    original_subject: str = DEFAULT_SUBJECT,
    sender: str = "Jean Martin <jean.martin@bretagne.pref.gouv.fr>",
    to: str = "conventions@ville.gouv.fr",
    variant: Literal["exchange", "rfc3834"] = "exchange",
) -> bytes:
    """An absence notice: Exchange-like (subject prefix + X-MS hints, no Auto-Submitted) or RFC 3834."""
    text = ("Bonjour,\n\nJe suis absent du bureau jusqu'au 26 mai inclus, avec un accès limité à ma "
            "messagerie. En cas d'urgence, contactez le secrétariat du SGAR.\n\nJean Martin")
    if variant == "exchange":
        extra = [("X-MS-Exchange-Inbox-Rules-Loop", "jean.martin@bretagne.pref.gouv.fr"),
                 ("X-Auto-Response-Suppress", "All"), ("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent")]
        subject = "Réponse automatique : " + original_subject
    else:
        extra = [("Auto-Submitted", "auto-replied"), ("X-Autoreply", "yes")]
        subject = "Absence du bureau : " + original_subject
    return build_email(sender=sender, to=to, subject=subject, body=text, style="outlook", extra_headers=extra)


def bounce(
    original: bytes,
    *,
    recipient: str = "conventions@ville.gouv.fr",
    sender: str = "Mail Delivery System <MAILER-DAEMON@smtp.ville.gouv.fr>",
    return_path: str | None = "<>",
    auto_submitted: bool = True,
) -> bytes:
    """A delivery status notification (multipart/report) returning ``original``."""
    boundary = _boundary("DSN.")
    explanation = (f"This is the mail system at host smtp.ville.gouv.fr.\r\n\r\n"
                   f"I'm sorry to have to inform you that your message could not be delivered to "
                   f"one or more recipients.\r\n\r\n<{recipient}>: host mx said: 550 5.1.1 User unknown")
    status = (f"Reporting-MTA: dns; smtp.ville.gouv.fr\r\nArrival-Date: {DATE}\r\n\r\n"
              f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
              f"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n")
    parts = [
        _part([("Content-Description", "Notification"), ("Content-Type", "text/plain; charset=us-ascii")],
              explanation),
        _part([("Content-Description", "Delivery report"), ("Content-Type", "message/delivery-status")], status),
        _part([("Content-Description", "Undelivered Message"), ("Content-Type", "message/rfc822")],
              original.decode("utf-8", "surrogateescape")),
    ]
    headers: list[tuple[str, str]] = []
    if return_path is not None:
        headers.append(("Return-Path", return_path))
    headers += [
        ("Date", DATE),
        ("From", sender),
        ("Subject", "Undelivered Mail Returned to Sender"),
        ("To", recipient),
        ("Message-ID", f"<{uuid.uuid4().hex}@smtp.ville.gouv.fr>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/report; report-type=delivery-status;{CRLF}\tboundary="{boundary}"'),
    ]
    if auto_submitted:
        headers.insert(2, ("Auto-Submitted", "auto-replied"))
    return _part(headers, _multipart("report", parts, boundary)).encode("utf-8", "surrogateescape")
