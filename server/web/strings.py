"""Every word the browser pages show, in Japanese (the default) and English: one (ja, en) pair
per key, so a language can never lack a string. ``PAGE`` is rendered by the server; ``CLIENT``
travels to the page's ES modules as JSON. ``{name}`` marks a value filled in at run time.
Longer than 600 lines because it is a table of every word of every page, in two languages."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"

# Step 10's heading once the page has built the .p12: it says what happened, the file was made.
# The seed's wording ("作成とインストールに成功しました") claimed an installation that the page
# cannot do (docs/divergences.md); the file is saved, then installed, by the subscriber.
SUCCESS_JA = "証明書ファイル（.p12）を作成しました"
SUCCESS_EN = "The certificate file (.p12) has been created"

PAGE: Mapping[str, tuple[str, str]] = {
    # layout
    "site": ("jitsuin 電子証明書サービス", "jitsuin certificate service"),
    "skip": ("本文へ移動", "Skip to the content"),
    "nav": ("手続き", "Steps"),
    "switch_language": ("English", "日本語"),
    "privacy": (
        "このサイトはクッキー、アクセス解析、外部のスクリプトを使いません。秘密鍵はお使いの"
        "ブラウザの中で作られ、どこにも送信されません。",
        "This site uses no cookies, no analytics and no third-party scripts. Your private key is "
        "made inside your browser and is never sent anywhere.",
    ),
    "needs_script": (
        "このページには JavaScript が必要です。ブラウザの設定で有効にしてください。",
        "This page needs JavaScript. Please enable it in your browser.",
    ),
    # navigation titles
    "home_title": ("電子証明書の申請と取得", "Applying for and obtaining your certificate"),
    "online_input_title": ("オンライン入力（ステップ6）", "Online input (step 6)"),
    "status_title": ("申請の状況", "Application status"),
    "pickup_title": ("証明書の取得（ステップ10）", "Obtain your certificate (step 10)"),
    "ca_title": ("CA証明書（ステップ11）", "CA certificates (step 11)"),
    "check_title": ("証明書の確認（ステップ12）", "Check your certificate (step 12)"),
    "nav_online_input": ("オンライン入力", "Online input"),
    "nav_status": ("状況確認", "Status"),
    "nav_pickup": ("証明書の取得", "Obtain"),
    "nav_ca": ("CA証明書", "CA certificates"),
    "nav_check": ("確認", "Check"),
    # home
    "home_intro": (
        "書類の審査と本人限定受取郵便による照会が終わると、このサイトで次の手続きを行います。",
        "Once your documents have been reviewed and the inquiry letter has reached you by "
        "restricted-delivery mail, you continue here.",
    ),
    "home_online_input": (
        "照会書に同封の「オンライン入力情報通知書」の受付番号とアクセスコードで、登録内容を確認します。",
        "Confirm your registered data with the enrollment ID and access code from the online "
        "input notice enclosed with the inquiry letter.",
    ),
    "home_status": (
        "受付番号で、申請がどこまで進んだかを確認できます。",
        "See how far your application has progressed, with your enrollment ID.",
    ),
    "home_pickup": (
        "電子メールで届いたダウンロードPINで証明書を取得します。鍵ペアはブラウザの中で作られます。",
        "Obtain the certificate with the download PIN from the e-mail. The key pair is made in "
        "your browser.",
    ),
    "home_ca": (
        "CA証明書とリンク証明書をダウンロードし、フィンガープリントを確認してインストールします。",
        "Download the CA certificate and link certificates, compare the fingerprints and install "
        "them.",
    ),
    "home_check": (
        "証明書がCA証明書につながること、種類と有効期限を確認します。",
        "Check that your certificate chains to the CA certificate, and see its type and expiry.",
    ),
    # shared form words
    "enrollment_id": ("受付番号", "Enrollment ID"),
    "enrollment_id_hint": (
        "例: 33DBX-Z0QFC（照会書に同封の通知書、またはPINの電子メールに記載）",
        "For example 33DBX-Z0QFC (in the notice with the inquiry letter, or in the PIN e-mail)",
    ),
    "required": ("必須", "required"),
    # online input
    "online_input_intro": (
        "「オンライン入力情報通知書」に記載の受付番号とアクセスコードを入力してください。"
        "QRコードから開いた場合は入力済みです。",
        "Enter the enrollment ID and the access code printed on the online input notice. If you "
        "opened this page from the QR code, they are already filled in.",
    ),
    "access_code": ("アクセスコード", "Access code"),
    "access_code_hint": (
        "26文字の英数字。ハイフンは省略できます。一度だけ使えます。",
        "26 letters and digits; the hyphens may be left out. It works once.",
    ),
    "show_data": ("登録内容を表示", "Show my registered data"),
    "review_heading": ("登録内容の確認", "Check your registered data"),
    "review_intro": (
        "証明書には次の内容が記載されます。誤りがある場合は確定せず、CAにご連絡ください。",
        "Your certificate will hold the data below. If anything is wrong, do not confirm: "
        "contact the CA.",
    ),
    "confirm": ("この内容で確定する", "Confirm this data"),
    "cancel": ("やめる", "Cancel"),
    "received_heading": ("オンライン入力を受け付けました", "Your online input has been received"),
    "received_text": (
        "CAが内容を確認して承認すると、ダウンロードPINを電子メールでお送りします。",
        "When the CA has checked and approved it, the download PIN will be sent to you by e-mail.",
    ),
    "see_status": ("申請の状況を見る", "See the application status"),
    # status
    "status_intro": (
        "受付番号を入力すると、申請の進み具合を表示します。個人情報は表示されません。",
        "Enter your enrollment ID to see how far your application has progressed. No personal "
        "data is shown.",
    ),
    "show_status": ("状況を表示", "Show the status"),
    "status_heading": ("現在の状況", "Current status"),
    # pickup
    "pickup_intro": (
        "電子メールで届いた受付番号とダウンロードPINを入力してください。鍵ペアはこのブラウザの中で"
        "作られ、CAに送られるのは公開鍵を含む証明書署名要求（CSR）だけです。",
        "Enter the enrollment ID and the download PIN from the e-mail. The key pair is made in "
        "this browser; only the certificate signing request (CSR), which holds the public key, "
        "is sent to the CA.",
    ),
    "pin": ("ダウンロードPIN", "Download PIN"),
    "pin_hint": (
        "8桁の数字。一度だけ使えます。{max}回間違えるとロックされます。",
        "8 digits. It works once; {max} wrong tries lock it.",
    ),
    "key_type": ("鍵の種類", "Key type"),
    "key_ecdsa_p256": ("ECDSA P-256（推奨）", "ECDSA P-256 (recommended)"),
    "key_rsa_2048": ("RSA 2048ビット", "RSA 2048-bit"),
    "key_rsa_3072": ("RSA 3072ビット", "RSA 3072-bit"),
    "key_type_hint": (
        "古いソフトウェアでRSAが必要な場合のみRSAを選んでください。",
        "Choose RSA only if older software you use needs it.",
    ),
    "get_certificate": ("証明書を取得", "Obtain my certificate"),
    "passphrase_heading": ("パスフレーズの設定", "Choose a passphrase"),
    "passphrase_intro": (
        "証明書が発行されました。秘密鍵と証明書を保存するファイル（PKCS#12、.p12）を守る"
        "パスフレーズを決めてください。このページを閉じると秘密鍵は失われます。",
        "Your certificate has been issued. Choose a passphrase to protect the file (PKCS#12, "
        ".p12) that will hold your private key and certificate. If you close this page now, the "
        "private key is lost.",
    ),
    "issued_to": ("発行先", "Issued to"),
    "valid_until": ("有効期限", "Valid until"),
    "passphrase": ("パスフレーズ", "Passphrase"),
    "passphrase_hint": (
        "8文字以上。証明書をインストールするときに必要です。CAには送られません。",
        "At least 8 characters. You need it to install the certificate; it is not sent to the CA.",
    ),
    "passphrase_again": ("パスフレーズ（確認）", "Passphrase (again)"),
    "create_file": ("ファイルを作成", "Create the file"),
    "success_heading": (SUCCESS_JA, SUCCESS_EN),
    "not_saved_yet": (
        "ファイルはまだ保存されていません。インストールもまだです。下のボタンで保存してください。"
        "保存するまで、このページを閉じたり移動したりしないでください。秘密鍵はこのファイルにしか"
        "ありません。",
        "The file has not been saved yet, and nothing has been installed. Save it with the button "
        "below. Do not close or leave this page before: the private key exists only in this file.",
    ),
    "download_p12": ("証明書ファイル（.p12）を保存", "Save the certificate file (.p12)"),
    "download_cert": ("証明書のみ（.pem）", "Certificate only (.pem)"),
    "next_steps": ("次の手順", "Next steps"),
    "next_import": (
        "保存した .p12 ファイルを開き、パスフレーズを入力して、お使いのOSまたはメールソフトに"
        "インストールしてください。",
        "Open the saved .p12 file and enter the passphrase to install it into your operating "
        "system or e-mail program.",
    ),
    "next_ca": (
        "CA証明書をインストールしてください（ステップ11）。",
        "Install the CA certificate (step 11).",
    ),
    "next_check": (
        "正しくインストールされたことを確認してください（ステップ12）。",
        "Check that everything was installed correctly (step 12).",
    ),
    "keep_file": (
        ".p12 ファイルとパスフレーズは大切に保管してください。CAは秘密鍵を持っていないため、"
        "ファイルを送り直すことはできません。失くした場合は、証明書を失効させて新たに申請することに"
        "なります。",
        "Keep the .p12 file and the passphrase safe. The CA does not have your private key and "
        "cannot send it again: if it is lost, the certificate is revoked and you apply again.",
    ),
    # CA certificates
    "ca_intro": (
        "CA証明書をダウンロードしてインストールしてください。インストールの前に、SHA-256 "
        "フィンガープリントが印刷物に記載の値と一致することを確認してください。",
        "Download and install the CA certificate. Before installing it, check that its SHA-256 "
        "fingerprint matches the one printed on the letter you received.",
    ),
    "generations_heading": ("CA証明書", "CA certificates"),
    "generation": ("第{n}世代", "Generation {n}"),
    "current": ("現在の発行用", "issuing now"),
    "subject": ("名前", "Name"),
    "validity": ("有効期間", "Validity"),
    "fingerprint": ("SHA-256 フィンガープリント", "SHA-256 fingerprint"),
    "download": ("ダウンロード", "Download"),
    "der_file": ("DER形式（.crt）", "DER (.crt)"),
    "pem_file": ("PEM形式（.pem）", "PEM (.pem)"),
    "links_heading": ("リンク証明書", "Link certificates"),
    "links_intro": (
        "CAの鍵を更新したときに、旧世代と新世代をつなぐ証明書です。一方の世代のCA証明書だけを"
        "信頼している環境でも、もう一方の世代の証明書を検証できます。信頼されたルートではなく、"
        "中間証明機関としてインストールしてください。",
        "Made when the CA's key is renewed, they join the old and new generations, so that "
        "software that trusts only one generation can still validate certificates of the other. "
        "Install them as intermediate certification authorities, not as trusted roots.",
    ),
    "no_links": (
        "CAの鍵はまだ更新されていないため、リンク証明書はありません。",
        "The CA's key has not been renewed yet, so there are no link certificates.",
    ),
    "old_with_new": (
        "OldWithNew（第{old}世代の公開鍵、第{new}世代の署名）",
        "OldWithNew (generation {old} key, signed by generation {new})",
    ),
    "new_with_old": (
        "NewWithOld（第{new}世代の公開鍵、第{old}世代の署名）",
        "NewWithOld (generation {new} key, signed by generation {old})",
    ),
    "install_heading": ("インストールの方法", "How to install"),
    "install_windows": (
        "Windows: .crt ファイルを開き「証明書のインストール」から「信頼されたルート証明機関」に"
        "インストールします。",
        "Windows: open the .crt file, choose Install Certificate, and place it in Trusted Root "
        "Certification Authorities.",
    ),
    "install_macos": (
        "macOS: .crt ファイルを開いてキーチェーンに追加し、「常に信頼」に設定します。",
        "macOS: open the .crt file to add it to Keychain Access, then set it to Always Trust.",
    ),
    "install_mozilla": (
        "Thunderbird・Firefox: 設定の「証明書を表示」→「認証局証明書」→「インポート」で、"
        "「メールユーザーの識別」を信頼します。",
        "Thunderbird and Firefox: Settings, View Certificates, Authorities, Import, and trust it "
        "to identify mail users.",
    ),
    # check
    "check_intro": (
        "証明書ファイル、または .p12 ファイルとパスフレーズを選んでください。確認はこのブラウザの"
        "中で行われ、ファイルも秘密鍵もパスフレーズも送信されません。失効していないかどうかは、"
        "このサイトのOCSPレスポンダーに証明書のシリアル番号だけを送って確認します。",
        "Choose a certificate file, or the .p12 file and its passphrase. The check runs in this "
        "browser: neither the file, nor the private key, nor the passphrase is sent anywhere. "
        "Whether it is revoked is asked of this site's OCSP responder, with the certificate's "
        "serial number only.",
    ),
    "file_kind": ("確認するファイル", "What to check"),
    "kind_certificate": (
        "証明書ファイル（.crt、.cer、.pem）",
        "A certificate file (.crt, .cer, .pem)",
    ),
    "kind_p12": ("PKCS#12 ファイル（.p12、.pfx）", "A PKCS#12 file (.p12, .pfx)"),
    "file": ("ファイル", "File"),
    "p12_passphrase": ("パスフレーズ（.p12 の場合）", "Passphrase (for a .p12 file)"),
    "check": ("確認する", "Check"),
    "result_heading": ("確認の結果", "Result"),
}

CLIENT: Mapping[str, tuple[str, str]] = {
    # generic
    "working": ("処理中…", "Working…"),
    "network_error": (
        "サーバーに接続できませんでした。ネットワークを確認して、もう一度お試しください。",
        "The server could not be reached. Check your network and try again.",
    ),
    "server_error": (
        "サーバーでエラーが発生しました（{status}）。しばらくしてからお試しください。",
        "The server reported an error ({status}). Please try again later.",
    ),
    "no_webcrypto": (
        "このブラウザでは鍵を作成できません（Web Crypto API が使えません）。最新のブラウザで、"
        "https のページとして開いてください。",
        "This browser cannot make keys (the Web Crypto API is unavailable). Use a current browser "
        "and open the page over https.",
    ),
    "field_required": ("{field}を入力してください。", "Enter your {field}."),
    "enrollment_id_label": ("受付番号", "enrollment ID"),
    "access_code_label": ("アクセスコード", "access code"),
    "pin_label": ("ダウンロードPIN", "download PIN"),
    "passphrase_label": ("パスフレーズ", "passphrase"),
    "errors_in_form": ("入力内容を確認してください。", "Please correct the form."),
    "enrollment_id_format": (
        "受付番号は10文字の英数字です（例: 33DBX-Z0QFC）。",
        "The enrollment ID is 10 letters and digits (for example 33DBX-Z0QFC).",
    ),
    # online input
    "wrong_access_code": (
        "受付番号またはアクセスコードが正しくありません。あと{left}回間違えるとロックされます。",
        "The enrollment ID or the access code is wrong. {left} more wrong tries will lock it.",
    ),
    "wrong_access_code_one": (
        "受付番号またはアクセスコードが正しくありません。あと1回間違えるとロックされます。",
        "The enrollment ID or the access code is wrong. 1 more wrong try will lock it.",
    ),
    "wrong_access_code_now_locked": (
        "アクセスコードが正しくありません。{max}回間違えたため、アクセスコードはロックされました。"
        "CAに照会書の再送を依頼してください。",
        "The access code is wrong. After {max} wrong tries the access code is now locked: ask the "
        "CA to send a new letter.",
    ),
    "attempt_wait": (
        "この接続元から直前に誤った入力がありました。{seconds}秒待ってからもう一度お試しください。",
        "A wrong credential was just tried from this address. Wait {seconds} seconds and try "
        "again.",
    ),
    "unknown_credential": (
        "受付番号またはアクセスコードが正しくありません。",
        "The enrollment ID or the access code is wrong.",
    ),
    "access_code_used": (
        "このアクセスコードは使用済みです。オンライン入力はすでに受け付けています。",
        "This access code has already been used: your online input was received.",
    ),
    "access_code_locked": (
        "アクセスコードは{max}回間違えたためロックされています。CAに照会書の再送を依頼してください。",
        "The access code is locked after {max} wrong tries. Ask the CA to send a new letter.",
    ),
    "online_input_too_early": (
        "まだオンライン入力はできません。返送された照会書と料金の支払いの両方をCAが確認した後に"
        "入力できます。",
        "Online input is not open yet: it opens once the CA has both your signed letter and your "
        "payment.",
    ),
    "online_input_closed": (
        "この申請はオンライン入力の段階を過ぎています。申請の状況をご確認ください。",
        "This application is past the online input step. See the application status.",
    ),
    "profile_general": ("一般", "General"),
    "profile_document-manager": ("文書情報管理士", "Document information manager"),
    "field_profile": ("証明書の種類", "Certificate type"),
    "field_name": ("氏名（ローマ字）", "Name (Roman letters)"),
    "field_email": ("電子メールアドレス", "E-mail address"),
    "field_group": ("資格情報1（所属）", "Qualification 1 (group)"),
    "field_number": ("資格情報2（番号）", "Qualification 2 (number)"),
    # status
    "unknown_enrollment": (
        "この受付番号の申請は見つかりません。入力を確認してください。",
        "No application has this enrollment ID. Please check what you typed.",
    ),
    "stage_documents": ("書類の受付・審査", "Documents received and reviewed"),
    "stage_inquiry": ("照会書の送付", "Inquiry letter sent"),
    "stage_return": ("照会書の返送と支払い", "Letter returned and fee paid"),
    "stage_online_input": ("オンライン入力", "Online input"),
    "stage_approval": ("確認・承認", "Check and approval"),
    "stage_pin": ("ダウンロードPINの送付", "Download PIN e-mailed"),
    "stage_issued": ("証明書の発行", "Certificate issued"),
    "stage_step": ("ステップ{n}", "Step {n}"),
    "stage_steps": ("ステップ{first}–{last}", "Steps {first}–{last}"),
    "stage_done": ("完了", "done"),
    "stage_now": ("現在", "now"),
    "state_received": (
        "申請書類を受け付けました。審査をお待ちください。",
        "Your documents have been received and are waiting for review.",
    ),
    "state_documents_deficient": (
        "書類に不備がありました。CAから郵便でご連絡します。",
        "The documents were found deficient; the CA will contact you by post.",
    ),
    "state_documents_accepted": (
        "書類の審査が終わりました。照会書を本人限定受取郵便でお送りします。",
        "Your documents were accepted; the inquiry letter will be sent by restricted-delivery "
        "mail.",
    ),
    "state_inquiry_sent": (
        "照会書を送付しました。署名・押印して返送し、同封の請求書で料金をお支払いください。",
        "The inquiry letter has been sent. Sign and seal it, send it back, and pay the enclosed "
        "invoice.",
    ),
    "state_identity_confirmed": (
        "返送された照会書を確認しました。料金のお支払いをお待ちしています。",
        "Your signed letter has arrived; the payment has not been recorded yet.",
    ),
    "state_paid": (
        "お支払いを確認しました。照会書の返送をお待ちしています。",
        "Your payment has been recorded; the signed letter has not arrived yet.",
    ),
    "state_awaiting_online_input": (
        "オンライン入力をしてください（ステップ6）。",
        "Please complete the online input (step 6).",
    ),
    "state_online_input_received": (
        "オンライン入力を受け付けました。CAが確認して承認します。",
        "Your online input was received; the CA is checking it.",
    ),
    "state_approved": (
        "承認されました。ダウンロードPINを電子メールでお送りします。",
        "Approved: the download PIN is being e-mailed to you.",
    ),
    "state_pin_sent": (
        "ダウンロードPINを電子メールでお送りしました。証明書を取得してください（ステップ10）。",
        "The download PIN has been e-mailed to you. Obtain your certificate (step 10).",
    ),
    "state_issued": ("証明書は発行済みです。", "Your certificate has been issued."),
    "state_revoked": ("証明書は失効しています。", "Your certificate has been revoked."),
    "state_expired": ("証明書は有効期限が切れています。", "Your certificate has expired."),
    "state_rejected": ("申請は却下されました。", "The application was rejected."),
    "state_abandoned": ("申請は中止されました。", "The application was abandoned."),
    "pin_expires": ("PINの有効期限: {when}", "The PIN is valid until {when}"),
    "pin_is_locked": (
        "PINは間違いが続いたためロックされています。CAにPINの再送を依頼してください。",
        "The PIN is locked after too many wrong tries. Ask the CA to send a new PIN.",
    ),
    "pin_is_expired": (
        "PINの有効期限が切れています。CAにPINの再送を依頼してください。",
        "The PIN has expired. Ask the CA to send a new PIN.",
    ),
    "go_online_input": ("オンライン入力へ", "Go to the online input"),
    "go_pickup": ("証明書の取得へ", "Go to obtain your certificate"),
    # pickup
    "pin_format": ("ダウンロードPINは8桁の数字です。", "The download PIN is 8 digits."),
    "making_key": ("鍵ペアを作成しています…", "Making your key pair…"),
    "making_csr": ("証明書署名要求を作成しています…", "Making the certificate request…"),
    "enrolling": ("CAに証明書を申請しています…", "Asking the CA for your certificate…"),
    "wrong_pin": (
        "受付番号またはダウンロードPINが正しくありません。あと{left}回間違えるとPINはロックされます。",
        "The enrollment ID or the download PIN is wrong. {left} more wrong tries will lock the "
        "PIN.",
    ),
    "wrong_pin_one": (
        "受付番号またはダウンロードPINが正しくありません。あと1回間違えるとPINはロックされます。",
        "The enrollment ID or the download PIN is wrong. 1 more wrong try will lock the PIN.",
    ),
    "wrong_pin_now_locked": (
        "ダウンロードPINが正しくありません。{max}回間違えたため、PINはロックされました。CAにPINの"
        "再送を依頼してください。",
        "The download PIN is wrong. After {max} wrong tries the PIN is now locked: ask the CA to "
        "send a new PIN.",
    ),
    "unknown_pin_credential": (
        "受付番号またはダウンロードPINが正しくありません。",
        "The enrollment ID or the download PIN is wrong.",
    ),
    "pin_used": (
        "このダウンロードPINは使用済みです。証明書はすでに発行されています。PINは一度しか"
        "使えません。証明書を紛失した場合はCAにご相談ください。",
        "This download PIN has already been used: the certificate was issued. A PIN works only "
        "once; if you lost the certificate, contact the CA.",
    ),
    "pin_locked": (
        "ダウンロードPINは{max}回間違えたためロックされています。CAにPINの再送を依頼してください。",
        "The download PIN is locked after {max} wrong tries. Ask the CA to send a new PIN.",
    ),
    "pin_expired": (
        "ダウンロードPINの有効期限が切れています。CAにPINの再送を依頼してください。",
        "The download PIN has expired. Ask the CA to send a new PIN.",
    ),
    "not_approved_yet": (
        "この申請はまだ承認されていないため、ダウンロードPINはまだありません。PINは承認の後に電子"
        "メールでお送りします。PINの電子メールが届いてから、そのPINを入力してください。",
        "This application has not been approved yet, so there is no download PIN yet. The PIN is "
        "e-mailed after the approval: wait for the PIN e-mail, then enter the PIN it gives.",
    ),
    "csr_refused": (
        "CAが証明書署名要求を受け付けませんでした: {reason}",
        "The CA refused the certificate request: {reason}",
    ),
    "key_reused": (
        "この鍵は以前の証明書で使われています。新しい鍵で再試行してください。",
        "This key was used for an earlier certificate. Try again to make a new key.",
    ),
    "ca_unavailable": (
        "現在、証明書を発行できません（{reason}）。CAにご連絡ください。",
        "Certificates cannot be issued right now ({reason}). Please contact the CA.",
    ),
    "bad_reply": (
        "CAの応答を読み取れませんでした: {reason}",
        "The CA's reply could not be read: {reason}",
    ),
    "passphrase_short": (
        "パスフレーズは8文字以上にしてください。",
        "The passphrase must be at least 8 characters.",
    ),
    "passphrase_mismatch": (
        "確認用のパスフレーズが一致しません。",
        "The two passphrases differ.",
    ),
    "building_p12": (
        "PKCS#12 ファイルを作成しています（数秒かかります）…",
        "Making the PKCS#12 file (this takes a few seconds)…",
    ),
    "saved": (
        "ファイルをブラウザに渡しました（ダウンロードの一覧で確認できます）。インストールはまだです。"
        "保存できなかった場合は、もう一度保存できます。",
        "The file was handed to your browser to save (see its downloads). Nothing has been "
        "installed yet. If it was not saved, save it again.",
    ),
    "save_again": (
        "証明書ファイル（.p12）をもう一度保存",
        "Save the certificate file (.p12) again",
    ),
    "leave_warning": (
        "秘密鍵はまだ保存されていません。",
        "Your private key has not been saved yet.",
    ),
    # check
    "choose_file": ("ファイルを選んでください。", "Choose a file."),
    "checking": ("確認しています…", "Checking…"),
    "verdict_ok": (
        "この証明書は公開されているCA証明書につながっています。",
        "This certificate chains to the published CA certificate.",
    ),
    "verdict_bad": (
        "この証明書は公開されているCA証明書につながっていません。",
        "This certificate does not chain to the published CA certificates.",
    ),
    "verdict_problem": (
        "この証明書はCA証明書につながっていますが、問題があります。",
        "This certificate chains to the CA certificate, but there is a problem.",
    ),
    "verdict_revoked": (
        "この証明書は失効しています。",
        "This certificate has been revoked.",
    ),
    "verdict_ca": (
        "これは公開されているCA証明書（第{n}世代）です。",
        "This is the published CA certificate (generation {n}).",
    ),
    "verdict_other_ca": (
        "これはCA証明書ですが、このCAが公開しているものではありません。",
        "This is a CA certificate, but not one this CA publishes.",
    ),
    "result_subject": ("名前", "Name"),
    "result_email": ("電子メールアドレス", "E-mail address"),
    "result_profile": ("種類", "Type"),
    "result_issuer": ("発行者", "Issued by"),
    "result_generation": ("CAの世代", "CA generation"),
    "result_valid": ("有効期間", "Validity"),
    "result_expires": ("有効期限", "Expires"),
    "result_days_left": ("あと{days}日", "{days} days left"),
    "result_fingerprint": ("SHA-256 フィンガープリント", "SHA-256 fingerprint"),
    "result_key": ("秘密鍵", "Private key"),
    "result_status": ("失効状況（OCSP）", "Revocation status (OCSP)"),
    "status_good": ("失効していません（{when}時点）", "not revoked (as of {when})"),
    "status_revoked": ("{when}に失効", "revoked on {when}"),
    "status_unknown": (
        "このCAはこの証明書を発行していません",
        "this CA did not issue this certificate",
    ),
    "result_revocation_reason": ("失効理由", "Reason for revocation"),
    "revocation_reason_unspecified": ("理由の指定なし", "unspecified"),
    "revocation_reason_keyCompromise": ("鍵の危殆化", "key compromise"),
    "revocation_reason_affiliationChanged": ("所属の変更", "affiliation changed"),
    "revocation_reason_superseded": ("新しい証明書への置き換え", "superseded"),
    "revocation_reason_cessationOfOperation": ("利用の終了", "cessation of operation"),
    "revocation_reason_privilegeWithdrawn": ("資格の取り消し", "privilege withdrawn"),
    "revocation_reason_cACompromise": ("CAの鍵の危殆化", "CA compromise"),
    "revocation_reason_certificateHold": ("一時停止", "certificate hold"),
    "revocation_reason_removeFromCRL": ("CRLからの削除", "removed from the CRL"),
    "revocation_reason_aACompromise": ("属性認証局の危殆化", "AA compromise"),
    "reason_status_unchecked": (
        "失効状況を確認できませんでした（{reason}）。",
        "The revocation status could not be checked ({reason}).",
    ),
    "key_matches": (
        "証明書と対になっています（ファイル内で確認し、送信していません）",
        "matches the certificate (checked inside the page, not sent)",
    ),
    "key_mismatch": ("証明書と対になっていません", "does not match the certificate"),
    "key_absent": ("ファイルに含まれていません", "not in the file"),
    "profile_unknown": (
        "不明（このCAの証明書ポリシーではありません）",
        "unknown (not this CA's policy)",
    ),
    "reason_other_issuer": (
        "このCAが発行した証明書ではありません（発行者: {issuer}）。",
        "It was not issued by this CA (issuer: {issuer}).",
    ),
    "reason_bad_signature": (
        "CA証明書の公開鍵で署名を検証できません。",
        "Its signature does not verify with the CA certificate's public key.",
    ),
    "reason_not_yet_valid": ("{when}まで有効になりません。", "It is not valid before {when}."),
    "reason_expired": ("{when}に有効期限が切れています。", "It expired on {when}."),
    "reason_ca_expired": (
        "発行したCA証明書の有効期間外です。",
        "The issuing CA certificate is not valid now.",
    ),
    "reason_not_email": (
        "電子メール保護用の証明書ではありません。",
        "It is not an e-mail protection certificate.",
    ),
    "reason_unsupported": (
        "この証明書の署名方式は確認できません（{what}）。",
        "Its signature algorithm cannot be checked here ({what}).",
    ),
    "bad_file": (
        "ファイルを読み取れません。証明書（.crt、.cer、.pem）または .p12 ファイルを選んで"
        "ください。",
        "The file cannot be read. Choose a certificate (.crt, .cer, .pem) or a .p12 file.",
    ),
    "p12_wrong_passphrase": (
        "パスフレーズが正しくありません。",
        "The passphrase is wrong.",
    ),
    "p12_unsupported": (
        "この .p12 ファイルは古い暗号方式のため、ブラウザでは開けません。証明書ファイルを選んで"
        "ください。",
        "This .p12 file uses an old encryption that browsers cannot open. Choose the certificate "
        "file instead.",
    ),
    "p12_no_certificate": (
        "この .p12 ファイルには証明書が含まれていません。",
        "This .p12 file holds no certificate.",
    ),
    "p12_needs_passphrase": (
        ".p12 ファイルのパスフレーズを入力してください。",
        "Enter the passphrase of the .p12 file.",
    ),
}


def page_text(lang: str) -> dict[str, str]:
    index = LANGUAGES.index(lang)
    return {key: pair[index] for key, pair in PAGE.items()}


def client_text(lang: str) -> dict[str, str]:
    index = LANGUAGES.index(lang)
    return {key: pair[index] for key, pair in CLIENT.items()}
