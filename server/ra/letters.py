"""What the RA prints and sends: the inquiry letter with the online-input notice and invoice
(seed steps 3 and 5), and the download PIN e-mail (step 9, SEED-R13) in Japanese and English."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from zoneinfo import ZoneInfo

import segno
from cryptography.hazmat.primitives import hashes

from jitsuin.ca.profiles import NameOrder
from jitsuin.server.authority import Authority
from jitsuin.server.config import Config, LetterConfig
from jitsuin.server.ra.credentials import grouped
from jitsuin.server.storage import ApplicationRecord

DEFAULT_SENDER = LetterConfig()
# Japanese text gives times in Japan Standard Time (UTC+9, no daylight saving).
JAPAN = ZoneInfo("Asia/Tokyo")


def online_input_url(public_https_url: str, enrollment_id: str, access_code: str) -> str:
    # The credential travels in the fragment, which browsers never send to a server.
    return f"{public_https_url}/online-input#id={enrollment_id}&code={access_code}"


def fingerprint_rows(hex_digest: str) -> list[str]:
    """``AB:CD:…`` in upper case, eight bytes a row (four rows for SHA-256): the letter and the
    step 11 page print the same rows, so that they are compared row by row."""
    pairs = [hex_digest[i : i + 2].upper() for i in range(0, len(hex_digest), 2)]
    return [":".join(pairs[i : i + 8]) for i in range(0, len(pairs), 8)]


def display_name(app: ApplicationRecord, name_order: NameOrder) -> str:
    """The applicant's name as the CA writes it everywhere (letter, e-mail, console) and as
    the certificate's common name has it: in the configured order ([ca] name_order)."""
    return name_order.common_name(app.given_name, app.family_name)


_POSTCODE_IN_ADDRESS = re.compile(r"^\s*〒?\s*([0-9]{3})-?([0-9]{4})\s*")


def split_postcode(address: str) -> tuple[str, str]:
    """(postcode, rest) of a postal address that starts with its 郵便番号 ("〒100-0013 …" or
    "1000013 …"); ("", address) when it has none."""
    found = _POSTCODE_IN_ADDRESS.match(address)
    if found is None:
        return "", address.strip()
    return f"{found[1]}-{found[2]}", address[found.end() :].strip()


def tax_included(amount: int, rate_percent: int) -> tuple[int, int]:
    """(amount before tax, consumption tax) of a tax-inclusive ``amount``: the tax is rounded
    down once per rate and invoice, as a qualified invoice states it (消費税法第57条の4)."""
    tax = amount * rate_percent // (100 + rate_percent)
    return amount - tax, tax


# A4 at most two sheets (docs/flow.md, step 3): page 1 is the letter to sign and return with the
# online-input notice; page 2 the CA fingerprints and the invoice. The fingerprint prints in rows
# of eight bytes that never break inside a row, so no byte is ever cut off at the margin.
_LETTER_STYLE = """
@page { size: A4; margin: 14mm 16mm; }
* { box-sizing: border-box; }
body { font-family: "IPAGothic", "IPAexGothic", "Noto Sans CJK JP", sans-serif; font-size: 10pt;
  line-height: 1.45; margin: 0 auto; max-width: 178mm; color: #000; background: #fff; }
h1 { font-size: 15pt; margin: 0 0 2mm; text-align: center; }
h2 { font-size: 11pt; margin: 4mm 0 1.5mm; border-bottom: 0.3mm solid #000; }
p { margin: 1mm 0; }
.sheet + .sheet { break-before: page; page-break-before: always; }
.head { display: flex; justify-content: space-between; gap: 6mm; }
.to { font-size: 11pt; }
.to .name { font-size: 13pt; }
.from { text-align: right; font-size: 9pt; }
.code { font-family: "DejaVu Sans Mono", monospace; font-size: 11pt; }
.sign { display: flex; align-items: flex-end; gap: 8mm; margin: 3mm 0; }
.sign .line { flex: 1; border-bottom: 0.3mm solid #000; height: 12mm; }
.seal { width: 25mm; height: 25mm; border: 0.3mm solid #000; text-align: center;
  font-size: 8pt; padding-top: 1mm; flex: none; }
.notice { display: flex; gap: 5mm; align-items: flex-start; }
.notice svg { flex: none; }
.condition { font-weight: bold; }
.fingerprint { font-family: "DejaVu Sans Mono", monospace; font-size: 10.5pt;
  margin: 1mm 0 2mm 4mm; }
.fingerprint span { display: block; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0; }
th, td { border: 0.3mm solid #000; padding: 1mm 2mm; text-align: left; vertical-align: top; }
td.yen { text-align: right; white-space: nowrap; }
@media screen { body { padding: 8mm; overflow-wrap: anywhere; }
  .sheet { border-bottom: 1px dashed #888; padding-bottom: 8mm; } }
@media screen and (max-width: 40rem) { body { padding: 2mm; }
  .head, .notice, .sign { flex-wrap: wrap; } .fingerprint { margin-left: 0; } }
"""


def letter_style() -> str:
    """The letter's one style sheet, inline so that the letter prints on its own; a page that
    serves it names its hash in the Content-Security-Policy."""
    return _LETTER_STYLE


def _fingerprint_block(hex_digest: str) -> str:
    rows = fingerprint_rows(hex_digest)
    spans = "".join(
        f"<span>{row}{':' if i < len(rows) - 1 else ''}</span>" for i, row in enumerate(rows)
    )
    return f'<p class="fingerprint">{spans}</p>'


def inquiry_letter(
    app: ApplicationRecord,
    enrollment_id: str,
    access_code: str,
    public_https_url: str,
    issued_on: dt.date,
    ca_fingerprints: Sequence[tuple[int, str]] = (),
    *,
    sender: LetterConfig = DEFAULT_SENDER,
    name_order: NameOrder = NameOrder.GIVEN_FAMILY,
    invoice_amount: int | None = None,
) -> str:
    """A printable HTML letter on at most two A4 sheets: the letter to sign, seal and return
    (SEED-R9, R10) with the sender, the return address and deadline, the online-input notice
    with its QR code (SEED-R12), the SHA-256 fingerprints of the CA certificates (to compare at
    step 11, SEED-R14), and the invoice with its tax breakdown (SEED-R19)."""
    e = html.escape
    url = online_input_url(public_https_url, enrollment_id, access_code)
    name = e(display_name(app, name_order))
    postcode, address = split_postcode(app.postal_address)
    return_by = issued_on + dt.timedelta(days=sender.return_days)
    due = issued_on + dt.timedelta(days=sender.payment_days)
    amount = app.invoice_amount or invoice_amount or 0
    net, tax = tax_included(amount, sender.tax_rate_percent)
    fingerprints = "".join(
        f"<p>第{n}世代 / generation {n}</p>{_fingerprint_block(hex_)}"
        for n, hex_ in ca_fingerprints
    )
    qr = segno.make(url, error="m").svg_inline(scale=3)
    if app.billing_addressee == "company" and app.billing_company:
        addressee = f"{e(app.billing_company)} 御中"
    else:
        addressee = f"{name} 様"
    contact = " / ".join(e(c) for c in (sender.phone, sender.email) if c)
    from_block = f"{e(sender.ca_name)}<br>〒{e(sender.postcode)} {e(sender.address)}" + (
        f"<br>{contact}" if contact else ""
    )
    registration = e(sender.registration_number) or "未設定 / not set"
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>照会書 / Inquiry letter {e(app.id)}</title>
<style>{_LETTER_STYLE}</style></head><body><main>
<section class="sheet">
<div class="head">
<p class="to">{"〒" + e(postcode) if postcode else "〒"}<br>{e(address)}<br>
<span class="name">{name} 様</span></p>
<p class="from">発行日 / Date: {issued_on.isoformat()}<br>申請番号 / Application: {e(app.id)}<br>
差出人 / From:<br>{from_block}</p>
</div>
<h1>照会書 / Inquiry letter</h1>
<p>電子証明書の発行申請を受け付けました。ご本人の申請であることを確認するため、<!--
-->この照会書に署名し、実印を押して（浸透印は不可）、<!--
--><strong>{return_by.isoformat()}</strong> までに下記へご返送ください。<br>
We received your application for a certificate. To confirm that it is yours, sign this letter,
seal it with your registered seal (no self-inking stamps) and return it by post to the address
below by <strong>{return_by.isoformat()}</strong>.</p>
<p>返送先 / Return to: {e(sender.ca_name)} 〒{e(sender.postcode)} {e(sender.address)}</p>
<p>上記の申請は私本人が行ったものです。/ I made the application above myself.</p>
<div class="sign"><div>署名 / Signature</div><div class="line"></div>
<div class="seal">実印 / Seal</div></div>
<h2>オンライン入力情報通知書 / Online input notice</h2>
<div class="notice">
<div>
<p>受付番号 / Enrollment ID: <span class="code">{e(enrollment_id)}</span></p>
<p>アクセスコード / Access code: <span class="code">{e(grouped(access_code))}</span></p>
<p class="condition">オンライン入力は、署名・押印したこの照会書が当局に届き、<!--
-->手数料の入金を確認した後にできるようになります。<br>
Online input works only after this signed and sealed letter is back with us and the fee has been
paid.</p>
<p>{e(public_https_url)}/online-input で入力するか、QRコードを読み取ってください。<!--
-->このコードは一度だけ使えます。他人に知らせないでください。<br>
Enter them at {e(public_https_url)}/online-input or scan the code. The code works once; do not
share it.</p>
</div>
{qr}
</div>
</section>
<section class="sheet">
<h2>CA証明書のフィンガープリント / CA certificate fingerprints (SHA-256)</h2>
<p>ダウンロードしたCA証明書のSHA-256フィンガープリントが、次の値と1文字残らず一致することを確認してください。<br>
Check that the CA certificate you download has exactly this SHA-256 fingerprint.</p>
{fingerprints}
<h2>請求書 / Invoice {e(app.invoice_number or "")}</h2>
<p>宛先 / Bill to: {addressee}</p>
<p>発行者 / Issuer: {e(sender.ca_name)} 〒{e(sender.postcode)} {e(sender.address)}<br>
登録番号 / Registration number (適格請求書発行事業者): {registration}</p>
<p>発行日 / Date: {issued_on.isoformat()} &nbsp;
お支払期限 / Due: <strong>{due.isoformat()}</strong></p>
<table>
<tr><th scope="col">内容 / Item</th><th scope="col">税率 / Tax rate</th>
<th scope="col">金額 / Amount</th></tr>
<tr><td>電子証明書発行手数料 / Certificate issuance fee ({e(app.profile)})</td>
<td>{sender.tax_rate_percent}%</td><td class="yen">{amount:,} 円</td></tr>
<tr><td>{sender.tax_rate_percent}%対象 税抜 / Net at {sender.tax_rate_percent}%</td><td></td>
<td class="yen">{net:,} 円</td></tr>
<tr><td>消費税 / Consumption tax ({sender.tax_rate_percent}%)</td><td></td>
<td class="yen">{tax:,} 円</td></tr>
<tr><th scope="row">合計（税込） / Total incl. tax</th><td></td>
<td class="yen"><strong>{amount:,} 円 (JPY)</strong></td></tr>
</table>
<p>お支払方法 / Payment: {e(sender.payment_method)}<br>
振込先 / Account: {e(sender.payment_account)}<br>
振込の際は請求書番号 {e(app.invoice_number or "")} をお書き添えください。/ Quote the invoice
number with your payment.</p>
<p>お問い合わせ / Contact: {e(sender.ca_name)}{" — " + contact if contact else ""}</p>
</section>
</main></body></html>
"""


def ca_fingerprints(authority: Authority) -> list[tuple[int, str]]:
    """(generation, SHA-256 hex) of every published CA certificate, as the letter prints them."""
    return [
        (g.number, g.certificate.fingerprint(hashes.SHA256()).hex()) for g in authority.generations
    ]


def configured_letter(
    config: Config,
    app: ApplicationRecord,
    enrollment_id: str,
    access_code: str,
    issued_on: dt.date,
    ca_fingerprints: Sequence[tuple[int, str]],
) -> str:
    """The inquiry letter with the configured sender ([letter]) and name order ([ca])."""
    return inquiry_letter(
        app,
        enrollment_id,
        access_code,
        config.server.public_https_url,
        issued_on,
        ca_fingerprints,
        sender=config.letter,
        name_order=config.ca.name_order,
        invoice_amount=config.ra.invoice_amount,
    )


def pin_mail(
    app: ApplicationRecord,
    sender: str,
    pin: str,
    eab_key: str,
    expires: dt.datetime,
    public_https_url: str,
    *,
    name_order: NameOrder = NameOrder.GIVEN_FAMILY,
) -> EmailMessage:
    """The download PIN and, for ACME clients, the External Account Binding key (docs/flow.md).
    The Japanese text gives the expiry in Japan time, the English text in UTC and Japan time."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = app.email
    message["Subject"] = "電子証明書ダウンロードPIN / Your certificate download PIN"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    jst = expires.astimezone(JAPAN)
    until_ja = jst.strftime("%Y年%m月%d日 %H:%M（日本時間）")
    until = f"{expires.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({jst:%Y-%m-%d %H:%M} JST)"
    name = display_name(app, name_order)
    enrollment = app.enrollment_id or ""
    est = f"{public_https_url}/.well-known/est/{app.profile}/simpleenroll"
    message.set_content(
        f"""{name} 様

電子証明書の発行が承認されました。次のダウンロードPINで証明書を取得してください。

  受付番号: {enrollment}
  ダウンロードPIN: {pin}
  有効期限: {until_ja}

ブラウザ: {public_https_url}/pickup
EST（ユーザー名 = 受付番号、パスワード = PIN）:
  {est}
ACME: 外部アカウントバインディング kid = {enrollment}、HMAC鍵 = {eab_key}

PINは一度だけ使えます。5回間違えるとロックされます。

---

Dear {name},

Your certificate has been approved. Use this download PIN to obtain it.

  Enrollment ID: {enrollment}
  Download PIN: {pin}
  Valid until: {until}

Browser: {public_https_url}/pickup
EST (user = enrollment ID, password = PIN):
  {est}
ACME: External Account Binding kid = {enrollment}, HMAC key = {eab_key}

The PIN works once, by whichever route you use first; five wrong tries lock it.
""",
        # Quoted-printable keeps the ASCII lines (PIN, enrollment ID, URLs) readable in the raw
        # message, for a mail sink or a relay's log; base64 would hide them (RFC 2045 §6.7). The
        # EST URL stands on a line of its own, so no soft line break cuts it.
        charset="utf-8",
        cte="quoted-printable",
    )
    return message
