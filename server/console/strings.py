"""The console's words in Japanese (the default) and English (``?lang=en``)."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"

_TEXT: dict[str, tuple[str, str]] = {
    "site": ("jitsuin RA コンソール", "jitsuin RA console"),
    "skip": ("本文へ移動", "Skip to content"),
    "nav": ("コンソールのメニュー", "Console menu"),
    "switch_language": ("English", "日本語"),
    "signed_in": ("操作者: {name}（{role}）", "Operator: {name} ({role})"),
    "role_reviewer": ("審査担当", "reviewer"),
    "role_approver": ("承認担当", "approver"),
    "role_admin": ("管理者", "admin"),
    # navigation
    "nav_queue": ("申請一覧", "Queue"),
    "nav_new": ("申請の受付", "Receive"),
    "nav_mail": ("メール送信", "Mail queue"),
    "nav_audit": ("監査ログ", "Audit log"),
    "nav_ca": ("CA", "CA"),
    "nav_operators": ("操作者", "Operators"),
    "nav_acme": ("ACME EABキー", "ACME EAB keys"),
    # sign-in
    "unauthorized_title": ("クライアント証明書が必要です", "Client certificate required"),
    "unauthorized_text": (
        "このコンソールは、操作者に登録されたTLSクライアント証明書で利用します。"
        "ブラウザに証明書をインストールし、このページを開き直して証明書を選んでください。",
        "The console signs you in with the TLS client certificate bound to your operator "
        "account. Install the certificate in your browser, open this page again and choose it.",
    ),
    "unauthorized_detail": ("理由: {reason}", "Reason: {reason}"),
    "forbidden_title": ("この操作はできません", "Not allowed"),
    "cross_site_title": ("フォームを受け付けませんでした", "Form refused"),
    "cross_site_text": (
        "このフォームは、このコンソールのページから送られたものとして確認できませんでした。"
        "ページを開き直してから操作してください。",
        "This form could not be confirmed as sent from a page of this console. Load the page "
        "again and retry.",
    ),
    "not_found_title": ("見つかりません", "Not found"),
    # queue
    "queue_title": ("申請一覧", "Applications"),
    "filter": ("絞り込み", "Filter"),
    "state": ("状態", "State"),
    "all_states": ("すべて", "All"),
    "search": ("申請番号・氏名・メールアドレス", "Application ID, name or e-mail address"),
    "search_hint": (
        "APP-で始まる申請番号、氏名の一部（姓・名、登録どおりの表記）、またはメールアドレス全体。",
        "An application ID (APP-…), part of a name (family or given, as registered) "
        "or a whole e-mail address.",
    ),
    "search_button": ("表示", "Show"),
    "col_id": ("申請番号", "Application"),
    "col_name": ("氏名", "Name"),
    "col_state": ("状態", "State"),
    "col_in_state": ("この状態の期間", "Time in state"),
    "col_created": ("受付日時", "Received"),
    "none_found": ("該当する申請はありません。", "No applications found."),
    "previous": ("前へ", "Previous"),
    "next": ("次へ", "Next"),
    "page_of": ("{first}–{last}件目", "Items {first}–{last}"),
    "paging": ("ページ", "Pages"),
    "duration_days": ("{d}日{h}時間", "{d} d {h} h"),
    "duration_hours": ("{h}時間{m}分", "{h} h {m} min"),
    # states
    "state_received": ("受付", "Received"),
    "state_documents_deficient": ("書類不備", "Documents deficient"),
    "state_documents_accepted": ("書類確認済", "Documents accepted"),
    "state_inquiry_sent": ("照会書送付済", "Inquiry sent"),
    "state_identity_confirmed": ("照会書返送済（未入金）", "Letter back, not paid"),
    "state_paid": ("入金済（照会書未返送）", "Paid, letter not back"),
    "state_awaiting_online_input": ("オンライン入力待ち", "Awaiting online input"),
    "state_online_input_received": ("承認待ち", "Awaiting approval"),
    "state_approved": ("承認済（PIN送信中）", "Approved (PIN mail queued)"),
    "state_pin_sent": ("PIN送信済", "PIN sent"),
    "state_issued": ("発行済", "Issued"),
    "state_revoked": ("失効", "Revoked"),
    "state_expired": ("期限切れ", "Expired"),
    "state_rejected": ("却下", "Rejected"),
    "state_abandoned": ("取り下げ", "Withdrawn"),
    # new application
    "new_title": ("申請の受付", "Receive an application"),
    "new_intro": (
        "郵送で届いた申請書の内容を入力します（手順1）。",
        "Enter the application form that arrived by post (step 1).",
    ),
    "profile": ("証明書の種類", "Certificate profile"),
    "family_name": ("姓（ローマ字）", "Family name (romanized)"),
    "given_name": ("名（ローマ字）", "Given name (romanized)"),
    "email": ("メールアドレス", "E-mail address"),
    "group": ("資格", "Qualification"),
    "number": ("資格番号", "Qualification number"),
    "postcode": ("郵便番号", "Postcode"),
    "postcode_hint": ("例: 100-0013", "For example 100-0013"),
    "address": ("住所", "Postal address"),
    "date_of_birth": ("生年月日", "Date of birth"),
    "billing": ("請求書の宛先（SEED-R19）", "Invoice addressed to (SEED-R19)"),
    "billing_self": ("申請者本人", "The applicant"),
    "billing_company": ("会社", "A company"),
    "company": ("会社名（会社宛ての場合）", "Company name (for a company)"),
    "create": ("受け付ける", "Receive"),
    "group_document-information-manager": ("文書情報管理士", "Document Information Manager"),
    "group_member": ("登録会員", "Registered Member"),
    # application
    "application_title": ("申請 {id}", "Application {id}"),
    "facts": ("申請内容", "Application"),
    "created_by": ("受付者", "Entered by"),
    "reviewed_by": ("審査者", "Reviewed by"),
    "review_result": ("書類審査", "Document review"),
    "accepted": ("適合", "Accepted"),
    "deficient": ("不備あり", "Deficient"),
    "tracking": ("追跡番号", "Tracking number"),
    "invoice": ("請求書", "Invoice"),
    "enrollment_id": ("受付番号", "Enrollment ID"),
    "letter_returned": ("照会書の返送", "Letter returned"),
    "paid": ("入金", "Payment"),
    "online_input": ("オンライン入力", "Online input"),
    "approved_by": ("承認者", "Approved by"),
    "pin_expires": ("PINの有効期限", "PIN valid until"),
    "certificate": ("証明書", "Certificate"),
    "closed_reason": ("終了の理由", "Reason closed"),
    "not_yet": ("—", "—"),
    "history": ("履歴（監査ログ）", "History (audit log)"),
    "history_entries": ("この申請の記録", "Entries for this application"),
    "col_actions": ("操作", "Actions"),
    "col_time": ("日時", "Time"),
    "col_actor": ("操作者", "Actor"),
    "col_action": ("操作", "Action"),
    "col_details": ("内容", "Details"),
    "done": ("記録しました: {what}", "Recorded: {what}"),
    "error": ("できませんでした: {detail}", "Not done: {detail}"),
    # review
    "review_title": ("書類審査（手順2）", "Document review (step 2)"),
    "review_intro": (
        "届いた住民票と申請書を確認し、各項目を選んでください。不備があれば申請者に理由を伝えます。",
        "Check the resident record and the form, and answer each item. A deficiency is sent "
        "back to the applicant with its reason.",
    ),
    "received_on": ("書類の受付日", "Documents received on"),
    "issued_on": ("住民票の発行日", "Resident record issued on"),
    "rule_r7_date": ("SEED-R7: 受付日前3か月以内の発行", "SEED-R7: issued within 3 months"),
    "check_original": ("住民票は原本である", "The resident record is an original"),
    "rule_r7_original": ("SEED-R7: 写しは不可", "SEED-R7: no photocopies"),
    "check_mynumber": ("個人番号（マイナンバー）の記載がある", "It shows the Individual Number"),
    "rule_r8": (
        "SEED-R8: 記載があれば不備（番号は記録しない）",
        "SEED-R8: deficient if shown (the number is never recorded)",
    ),
    "check_name": ("氏名が一致する", "The name matches"),
    "check_address": ("住所が一致する", "The address matches"),
    "check_dob": ("生年月日が一致する", "The date of birth matches"),
    "rule_r6": ("SEED-R6: 住民票と申請書の一致", "SEED-R6: form and record agree"),
    "check_self_inking": ("印影は浸透印（シャチハタ等）である", "The seal is a self-inking stamp"),
    "rule_r9": ("SEED-R9: 浸透印は不可", "SEED-R9: self-inking stamps are not accepted"),
    "record_review": ("審査結果を記録", "Record the review"),
    "deficiency_told": ("申請者に伝える不備の理由", "Reasons the applicant will be told"),
    "resubmit": ("再提出を受け付ける", "New documents received"),
    "def_resident_record_too_old": (
        "住民票の発行日が受付日の3か月より前です（SEED-R7）",
        "the resident record was issued more than 3 months before receipt (SEED-R7)",
    ),
    "def_resident_record_photocopy": (
        "住民票が原本ではありません（SEED-R7）",
        "the resident record is a photocopy, not an original (SEED-R7)",
    ),
    "def_individual_number_shown": (
        "住民票に個人番号が記載されています（SEED-R8）",
        "the resident record shows the Individual Number (SEED-R8)",
    ),
    "def_name_mismatch": (
        "氏名が住民票と一致しません（SEED-R6）",
        "the name differs from the resident record (SEED-R6)",
    ),
    "def_address_mismatch": (
        "住所が住民票と一致しません（SEED-R6）",
        "the address differs from the resident record (SEED-R6)",
    ),
    "def_date_of_birth_mismatch": (
        "生年月日が住民票と一致しません（SEED-R6）",
        "the date of birth differs from the resident record (SEED-R6)",
    ),
    "def_self_inking_stamp": (
        "浸透印が使われています（SEED-R9）",
        "the seal was made with a self-inking stamp (SEED-R9)",
    ),
    # inquiry
    "inquiry_title": ("照会書の送付（手順3）", "Inquiry letter (step 3)"),
    "inquiry_intro": (
        "本人限定受取郵便の追跡番号を入力して送付を記録すると、照会書が印刷用に表示されます。"
        "アクセスコードはこのときだけ表示されます。"
        "再送すると新しいコードになります（SEED-R10, R12）。",
        "Enter the restricted-delivery tracking number and record the dispatch: the letter "
        "opens for printing. Its access code is shown this once; sending again makes a new "
        "one (SEED-R10, R12).",
    ),
    "preview": ("照会書の見本を表示", "Preview the letter"),
    "dispatch": ("送付を記録して照会書を印刷", "Record the dispatch and print the letter"),
    # letter and payment
    "returned_title": ("照会書の返送と入金（手順4・5）", "Letter back and payment (steps 4, 5)"),
    "returned_intro": (
        "どちらが先でも記録できます（SEED-R10, R11）。",
        "Record them in either order (SEED-R10, R11).",
    ),
    "letter_signed": ("署名がある", "It is signed"),
    "letter_sealed": ("押印がある", "It is sealed"),
    "letter_self_inking": ("浸透印である", "The seal is a self-inking stamp"),
    "record_letter": ("返送を記録", "Record the returned letter"),
    "invoice_number": ("請求書番号", "Invoice number"),
    "amount": ("入金額（円）", "Amount paid (yen)"),
    "record_payment": ("入金を記録", "Record the payment"),
    # approve
    "approve_title": ("承認（手順7）", "Approval (step 7)"),
    "two_person": (
        "二者承認: 受付または審査をした人は承認できません。",
        "Two-person rule: whoever entered or reviewed the application may not approve it.",
    ),
    "you": ("あなた", "You"),
    "you_vetted": (
        "あなたはこの申請の受付または審査をしたため、承認は拒否されます。",
        "You entered or reviewed this application, so your approval will be refused.",
    ),
    "approve": ("承認してPINを送信", "Approve and mail the PIN"),
    # closing
    "close_title": ("PIN再発行・却下・取り下げ・失効", "PIN reissue, reject, withdraw, revoke"),
    "reissue_pin": ("PINを再発行", "Reissue the PIN"),
    "reason": ("理由", "Reason"),
    "reject": ("却下", "Reject"),
    "abandon": ("取り下げ", "Withdraw"),
    "revoke": ("失効させる", "Revoke"),
    "revocation_reason": ("失効理由（RFC 5280 §5.3.1）", "Revocation reason (RFC 5280 §5.3.1)"),
    "confirm_action": ("この操作を行うことを確認しました", "I confirm this action"),
    # mail
    "mail_title": ("メール送信キュー", "Mail queue"),
    "mail_status": ("送信状態", "Status"),
    "col_recipient": ("宛先", "Recipient"),
    "col_attempts": ("試行回数", "Attempts"),
    "col_error": ("最後のエラー", "Last error"),
    "col_next": ("次回試行", "Next attempt"),
    "retry": ("再送", "Retry"),
    "mail_pending": ("送信待ち", "pending"),
    "mail_sent": ("送信済", "sent"),
    "mail_failed": ("失敗", "failed"),
    "mail_superseded": ("差し替え済", "superseded"),
    # audit
    "audit_title": ("監査ログ", "Audit log"),
    "audit_target": ("対象（例: application/APP-…）", "Target (e.g. application/APP-…)"),
    "audit_actor": ("操作者", "Actor"),
    "verify": ("ハッシュチェーンを検証", "Verify the hash chain"),
    "verify_ok": ("監査ログは完全です（{n}件）。", "The audit log is intact ({n} entries)."),
    "verify_broken": ("監査ログが改ざんされています: {error}", "The audit log is broken: {error}"),
    "older": ("さらに古い記録", "Older entries"),
    # CA
    "ca_title": ("CA（世代とロールオーバー）", "CA (generations and rollover)"),
    "generation": ("第{n}世代", "Generation {n}"),
    "current": ("現行", "current"),
    "validity": ("有効期間", "Validity"),
    "cutoff": ("発行の締切", "Issuance cut-off"),
    "fingerprint": ("SHA-256フィンガープリント", "SHA-256 fingerprint"),
    "crl": ("CRL", "CRL"),
    "crl_status": ("{this} 発行、次回 {next}", "issued {this}, next {next}"),
    "rollover_warning": (
        "発行の締切まで{days}日です。次の世代へのロールオーバーを準備してください（SEED-R15〜R17）。",
        "{days} days to the issuance cut-off: prepare the rollover to the next generation "
        "(SEED-R15…R17).",
    ),
    "links": ("リンク証明書", "Link certificates"),
    "no_links": ("リンク証明書はまだありません。", "No link certificates yet."),
    "rollover": ("ロールオーバー（管理者のみ）", "Rollover (admin only)"),
    "rollover_intro": (
        "新しいCA鍵と証明書、リンク証明書を作ります。元に戻せません。",
        "Makes a new CA key and certificate, and the link certificates. It cannot be undone.",
    ),
    "rollover_button": ("次の世代へロールオーバー", "Roll over to the next generation"),
    "confirm_required": ("確認のチェックが必要です。", "Tick the confirmation first."),
    # operators
    "operators_title": ("操作者", "Operators"),
    "col_role": ("役割", "Role"),
    "col_certificate": ("クライアント証明書", "Client certificate"),
    "col_status": ("状態", "Status"),
    "enabled": ("有効", "enabled"),
    "disabled": ("停止中", "disabled"),
    "disable": ("停止", "Disable"),
    "enable": ("再開", "Enable"),
    "rotate": ("APIトークンを再発行", "New API token"),
    "unbind": ("証明書の登録を解除", "Unbind certificate"),
    "new_token": (
        "{name} の新しいAPIトークン（この画面でのみ表示）: ",
        "New API token for {name} (shown this once): ",
    ),
    "add_operator": ("操作者を追加", "Add operator"),
    "add_operator_text": (
        "新しい操作者の最初のAPIトークンは一度だけ表示されます。本人が自分で再発行するまで、"
        "あなたもそのトークンを知る者として記録され、二者承認で数えられます。"
        "クライアント証明書は本人が自分で登録します。",
        "The new operator's first API token is shown this once. Until they issue themselves a "
        "new one, you are recorded as knowing it, and the two-person rule counts you. They bind "
        "their client certificate themselves.",
    ),
    "operator_name": ("操作者名", "Operator name"),
    "operator_name_hint": (
        "英小文字で始まり、英小文字・数字・. _ - の64文字まで。",
        "Starts with a lower-case letter; lower-case letters, digits, . _ -, up to 64.",
    ),
    "new_operator_token": (
        "操作者 {name} を追加しました。APIトークン（この画面でのみ表示）: ",
        "Operator {name} added. Their API token (shown this once): ",
    ),
    "no_certificate": ("未登録", "none"),
    # ACME
    "acme_title": ("ACME EABキー（tls-server）", "ACME EAB keys (tls-server)"),
    "col_kid": ("キーID", "Key ID"),
    "col_allowed": ("許可する名前", "Allowed names"),
    "col_lifetime": ("証明書の有効日数", "Certificate days"),
    "col_max": ("発行上限", "Max certificates"),
    "col_expires": ("期限", "Expires"),
    "col_used": ("使用", "Used"),
    "allowed": (
        "許可するDNSサフィックスまたはIPネットワーク（1行に1つ）",
        "Allowed DNS suffixes or IP networks (one a line)",
    ),
    "note": ("メモ", "Note"),
    "lifetime_days": ("証明書の有効日数", "Certificate lifetime (days)"),
    "max_certificates": ("発行上限（空欄で無制限）", "Max certificates (empty: no limit)"),
    "expires_days": ("キーの有効日数（空欄で無期限）", "Key expires in days (empty: never)"),
    "create_eab": ("EABキーを作成", "Create an EAB key"),
    "new_eab": (
        "新しいEABキー（HMAC鍵はこの画面でのみ表示）: ",
        "New EAB key (the HMAC key is shown this once): ",
    ),
    "unlimited": ("無制限", "no limit"),
    "never": ("なし", "never"),
}


def text(lang: str) -> Mapping[str, str]:
    index = 0 if lang == "ja" else 1
    return {key: pair[index] for key, pair in _TEXT.items()}
