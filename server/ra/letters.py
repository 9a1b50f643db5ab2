"""What the RA prints and sends: the inquiry letter with the online-input notice and invoice
(seed steps 3 and 5), and the download PIN e-mail (step 9, SEED-R13) in Japanese and English."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import segno

from jitsuin.server.fingerprint import fingerprint_rows
from jitsuin.server.ra.credentials import grouped
from jitsuin.server.storage import ApplicationRecord


def online_input_url(public_https_url: str, enrollment_id: str, access_code: str) -> str:
    # The credential travels in the fragment, which browsers never send to a server.
    return f"{public_https_url}/online-input#id={enrollment_id}&code={access_code}"


def print_fingerprint(hex_digest: str) -> str:
    """AB:CD:… in upper case, as openssl and browsers show it, in rows of eight bytes (the
    letter and the step 11 page print the same rows, so that they are compared row by row)."""
    return ":<br>".join(fingerprint_rows(hex_digest))


def inquiry_letter(
    app: ApplicationRecord,
    enrollment_id: str,
    access_code: str,
    public_https_url: str,
    issued_on: dt.date,
    ca_fingerprints: Sequence[tuple[int, str]] = (),
) -> str:
    """A printable HTML letter: the online-input notice with its QR code, the SHA-256
    fingerprints of the CA certificates (to compare at step 11, SEED-R14), and the invoice."""
    e = html.escape
    url = online_input_url(public_https_url, enrollment_id, access_code)
    fingerprints = "".join(
        f'<p>第{n}世代 / generation {n}:<br><span class="code">{print_fingerprint(hex_)}</span></p>'
        for n, hex_ in ca_fingerprints
    )
    qr = segno.make(url, error="m").svg_inline(scale=3)
    if app.billing_addressee == "company" and app.billing_company:
        addressee = f"{e(app.billing_company)} 御中 / {e(app.billing_company)}"
    else:
        addressee = f"{e(app.family_name)} {e(app.given_name)} 様"
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>照会書 / Inquiry letter {e(app.id)}</title>
<style>body{{font-family:serif;max-width:40em;margin:2em auto}} .code{{font:1.4em monospace}}
section{{page-break-after:always}}</style></head><body>
<section>
<h1>照会書 / Inquiry letter</h1>
<p>{e(app.family_name)} {e(app.given_name)} 様<br>{e(app.postal_address)}</p>
<p>発行日 / Date: {issued_on.isoformat()} &nbsp; 申請番号 / Application: {e(app.id)}</p>
<p>この照会書に署名・押印のうえ、ご返送ください（浸透印は不可）。<br>
Please sign and seal this letter and return it by post (self-inking stamps are not accepted).</p>
<p>署名 / Signature: ____________________ &nbsp; 印 / Seal: [　　]</p>
</section>
<section>
<h2>オンライン入力情報通知書 / Online input notice</h2>
<p>受付番号 / Enrollment ID: <span class="code">{e(enrollment_id)}</span></p>
<p>アクセスコード / Access code: <span class="code">{e(grouped(access_code))}</span></p>
<p>{e(public_https_url)}/online-input で入力するか、QRコードを読み取ってください。<br>
Enter them at {e(public_https_url)}/online-input or scan the code.</p>
{qr}
<p>このコードは一度だけ使えます。他人に知らせないでください。<br>
The code works once. Do not share it.</p>
</section>
<section>
<h2>CA証明書のフィンガープリント / CA certificate fingerprints (SHA-256)</h2>
<p>ダウンロードしたCA証明書のSHA-256フィンガープリントがこの値と一致することを確認してください。<br>
Check that the CA certificate you download has this SHA-256 fingerprint.</p>
{fingerprints}
</section>
<section>
<h2>請求書 / Invoice {e(app.invoice_number or "")}</h2>
<p>宛先 / Bill to: {addressee}</p>
<p>発行手数料 / Issuance fee: {app.invoice_amount or 0:,} 円 (JPY)</p>
</section>
</body></html>
"""


def pin_mail(
    app: ApplicationRecord,
    sender: str,
    pin: str,
    eab_key: str,
    expires: dt.datetime,
    public_https_url: str,
) -> EmailMessage:
    """The download PIN and, for ACME clients, the External Account Binding key (docs/flow.md)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = app.email
    message["Subject"] = "電子証明書ダウンロードPIN / Your certificate download PIN"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    until = expires.strftime("%Y-%m-%d %H:%M UTC")
    enrollment = app.enrollment_id or ""
    est = f"{public_https_url}/.well-known/est/{app.profile}/simpleenroll"
    message.set_content(
        f"""{app.family_name} {app.given_name} 様

電子証明書の発行が承認されました。次のダウンロードPINで証明書を取得してください。

  受付番号: {enrollment}
  ダウンロードPIN: {pin}
  有効期限: {until}

ブラウザ: {public_https_url}/pickup
EST（ユーザー名 = 受付番号、パスワード = PIN）:
  {est}
ACME: 外部アカウントバインディング kid = {enrollment}、HMAC鍵 = {eab_key}

PINは一度だけ使えます。5回間違えるとロックされます。

---

Dear {app.given_name} {app.family_name},

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
