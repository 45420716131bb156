"""A local NestPay 3D_PAY simulator for development, demos and tests — never for production.

A separate small WSGI app that behaves like the bank at `/fim/est3Dgate` and
`/fim/api`: it checks the request hash with its store key, shows a 3-D page
where the tester picks the outcome, posts the full result back to okUrl or
failUrl with a correct HASH, and answers Void, Credit and ORDERSTATUS from its
own record of payments. A count of instalments (`Instalment`, ver1 `taksit`: empty
for a single payment, 2 to 12) is shown on the 3-D page and posted back, as the
bank does. `POST /sandbox/settle` ends the bank's day, after
which a Credit (refund) is accepted and a Void is not.

Run it with `python -m limonbilling.sandbox --port 5001`.
"""
import os
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask import Flask, abort, render_template, request

from ..payments import nestpay
from ..payments.base import mask_pan

TEST_MERCHANT = {"client_id": "190100000", "store_key": "123456", "api_user": "ZIRAATAPI", "api_password": "ZIRAAT19"}
TEST_CARD = "4355084355084358"
CURRENCY_NAMES = {code: name for name, code in nestpay.CURRENCY_CODES.items()}

MD_ERROR_MESSAGES = {
    "1": "Authenticated",
    "0": "Not authenticated: 3-D Secure failed",
    "2": "Half 3-D Secure: card not enrolled (attempt)",
}
OUTCOMES = {
    # outcome: (mdStatus, Response, ProcReturnCode, ErrMsg)
    "approve": ("1", "Approved", "00", ""),
    "decline": ("1", "Declined", "05", "Red-Onaylanmadı (Do not honour)"),
    "3d_failure": ("0", "Error", "99", "3-D Secure doğrulaması başarısız (authentication failed)"),
    "half_3d": ("2", "Approved", "00", ""),
}


@dataclass
class Payment:
    oid: str
    amount_minor: int
    currency: str
    auth_code: str
    trans_id: str
    host_ref_num: str
    settled: bool = False
    status: str = "S"  # S sale, V voided
    refunded_minor: int = 0


@dataclass
class SimulatorState:
    pending: dict[str, dict] = field(default_factory=dict)  # token -> posted fields (card included, in memory only)
    payments: dict[str, Payment] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_simulator(
    *, client_id: str = TEST_MERCHANT["client_id"], store_key: str = TEST_MERCHANT["store_key"],
    api_user: str = TEST_MERCHANT["api_user"], api_password: str = TEST_MERCHANT["api_password"],
) -> Flask:
    if os.environ.get("LIMONBILLING_CONFIG") == "production":
        raise RuntimeError("The NestPay simulator is for development and tests only; it refuses production.")
    root = os.path.join(os.path.dirname(__file__), "..", "..", "templates")
    app = Flask(__name__, template_folder=root)
    state = SimulatorState()
    app.extensions["nestpay_simulator"] = state

    @app.post("/fim/est3Dgate")
    def gate():
        fields = request.form.to_dict()
        problem = _request_problem(fields, client_id, store_key)
        if problem:
            return render_template("sandbox/error.html", message=problem), 400
        token = secrets.token_urlsafe(16)
        with state.lock:
            state.pending[token] = fields
        hosting = fields.get("storetype") == "3d_pay_hosting"
        return render_template(
            "sandbox/3d.html", token=token, fields=fields, hosting=hosting, outcomes=OUTCOMES,
            instalments=_instalment_text(fields),
            masked=mask_pan(fields.get("pan", "")) if not hosting else "",
            currency=CURRENCY_NAMES.get(fields.get("currency", ""), fields.get("currency")),
        )

    @app.post("/fim/3d/<token>")
    def authenticate(token: str):
        with state.lock:
            fields = state.pending.pop(token, None)
        if fields is None:
            abort(404)
        outcome = request.form.get("outcome", "")
        if outcome not in OUTCOMES:
            abort(400)
        if fields.get("storetype") == "3d_pay_hosting":
            fields["pan"] = "".join(ch for ch in request.form.get("pan", "") if ch.isdigit())
        result = _result_fields(fields, outcome, store_key)
        if result["Response"] == "Approved" and result["ProcReturnCode"] == "00":
            amount_minor = int(Decimal(fields["amount"]) * 100)
            with state.lock:
                state.payments[fields["oid"]] = Payment(
                    oid=fields["oid"], amount_minor=amount_minor, currency=fields.get("currency", ""),
                    auth_code=result["AuthCode"], trans_id=result["TransId"], host_ref_num=result["HostRefNum"],
                )
        target = fields["okUrl"] if result["Response"] == "Approved" else fields["failUrl"]
        return render_template("sandbox/post_back.html", action=target, fields=result)

    @app.post("/fim/api")
    def api():
        body = request.form["DATA"].encode() if "DATA" in request.form else request.get_data()
        try:
            document = ET.fromstring(body)
        except ET.ParseError:
            return _api_answer(response="Error", code="99", message="XML parse error")
        text = {child.tag: (child.text or "") for child in document}
        if (text.get("Name"), text.get("Password"), text.get("ClientId")) != (api_user, api_password, client_id):
            return _api_answer(response="Error", code="99", message="Kullanici adi veya sifre hatali (authentication)")
        oid = text.get("OrderId", "")
        with state.lock:
            payment = state.payments.get(oid)
            if document.find("Extra/ORDERSTATUS") is not None:
                return _order_status(oid, payment)
            if payment is None:
                return _api_answer(oid=oid, response="Error", code="99", message="Siparis bulunamadi (no such order)")
            if text.get("Type") == "Void":
                return _void(payment)
            if text.get("Type") == "Credit":
                return _credit(payment, text.get("Total", ""))
        return _api_answer(oid=oid, response="Error", code="99", message="Unsupported request")

    @app.post("/sandbox/settle")
    def settle():
        """End of the bank's day: today's sales are settled (void no longer possible, refund possible)."""
        with state.lock:
            for payment in state.payments.values():
                payment.settled = True
        return {"settled": len(state.payments)}

    return app


def _request_problem(fields: dict[str, str], client_id: str, store_key: str) -> str | None:
    """What the bank's gate would refuse in a payment request, or None."""
    if fields.get("clientid") != client_id:
        return "Üye işyeri bulunamadı (unknown clientid)."
    for name in ("oid", "amount", "currency", "okUrl", "failUrl", "rnd", "storetype"):
        if not fields.get(name):
            return f"Eksik alan (missing field): {name}"
    received = fields.get("hash") or fields.get("HASH") or ""
    if fields.get("hashAlgorithm") == "ver3":
        expected = nestpay.hash_v3(fields, store_key)
    else:
        expected = nestpay.hash_v1_request(
            fields["clientid"], fields["oid"], fields["amount"], fields["okUrl"], fields["failUrl"],
            fields.get("islemtipi", ""), fields.get("taksit", ""), fields["rnd"], store_key,
        )
    if not secrets.compare_digest(received, expected):
        return "Güvenlik Uyarısı: hash değeri uyuşmuyor (hash mismatch)."
    if _instalment_text(fields) and not re.fullmatch(r"[2-9]|1[0-2]", _instalment_text(fields)):
        return "Geçersiz taksit sayısı (instalment count must be empty or 2 to 12)."
    if fields.get("storetype") == "3d_pay" and not fields.get("pan"):
        return "Kart numarası eksik (card number missing)."
    return None


def _instalment_text(fields: dict[str, str]) -> str:
    return (fields.get("Instalment") or fields.get("taksit") or "").strip()


def _result_fields(fields: dict[str, str], outcome: str, store_key: str) -> dict[str, str]:
    """Every posted field back (less the card), the bank's result fields, and a correct HASH."""
    pan = fields.get("pan", "")
    md_status, response, code, message = OUTCOMES[outcome]
    if outcome == "approve" and not nestpay.looks_like_pan(pan):
        md_status, response, code, message = "1", "Declined", "14", "Geçersiz kart numarası (invalid card number)"
    approved = response == "Approved"
    result = {name: value for name, value in fields.items() if name.lower() not in ("pan", "cv2", "hash")}
    result.update({
        "ReturnOid": fields["oid"],
        "mdStatus": md_status,
        "Response": response,
        "ProcReturnCode": code,
        "ErrMsg": message,
        "mdErrorMsg": MD_ERROR_MESSAGES[md_status],
        "MaskedPan": f"{pan[:6]}***{pan[-4:]}" if pan else "",
        "TransId": secrets.token_hex(7) if approved else "",
        "AuthCode": f"{secrets.randbelow(10**6):06d}" if approved else "",
        "HostRefNum": f"{secrets.randbelow(10**12):012d}" if approved else "",
        "EXTRA.TRXDATE": datetime.now().strftime("%Y%m%d %H:%M:%S"),
    })
    if fields.get("hashAlgorithm") == "ver3":
        result["HASH"] = nestpay.hash_v3(result, store_key)
    else:
        names = ["clientid", "oid", "AuthCode", "ProcReturnCode", "Response", "mdStatus", "rnd"]
        result["HASHPARAMS"] = ":".join(names) + ":"
        result["HASHPARAMSVAL"] = "".join(result.get(name, "") for name in names)
        result["HASH"] = nestpay.hash_v1_callback(result["HASHPARAMSVAL"], store_key)
    return result


def _api_answer(*, oid: str = "", response: str, code: str, message: str = "", extra: dict | None = None,
                auth_code: str = "", trans_id: str = "", host_ref_num: str = ""):
    root = ET.Element("CC5Response")
    for name, text in (("OrderId", oid), ("GroupId", oid), ("Response", response), ("AuthCode", auth_code),
                       ("HostRefNum", host_ref_num), ("ProcReturnCode", code), ("TransId", trans_id),
                       ("ErrMsg", message)):
        ET.SubElement(root, name).text = text
    extra_element = ET.SubElement(root, "Extra")
    for name, text in (extra or {}).items():
        ET.SubElement(extra_element, name).text = text
    body = '<?xml version="1.0" encoding="ISO-8859-9"?>' + ET.tostring(root, encoding="unicode")
    return body.encode("iso-8859-9", errors="replace"), 200, {"Content-Type": "text/xml; charset=ISO-8859-9"}


def _void(payment: Payment):
    if payment.status != "S":
        return _api_answer(oid=payment.oid, response="Declined", code="99", message="İşlem zaten iptal edilmiş")
    if payment.settled:
        return _api_answer(oid=payment.oid, response="Declined", code="99",
                           message="Gün sonu yapılmış işlem iptal edilemez, iade yapın (settled: use Credit)")
    payment.status = "V"
    return _api_answer(oid=payment.oid, response="Approved", code="00", auth_code=payment.auth_code,
                       trans_id=secrets.token_hex(7), host_ref_num=payment.host_ref_num)


def _credit(payment: Payment, total: str):
    if not payment.settled:
        return _api_answer(oid=payment.oid, response="Error", code="99",
                           message="Iade yapilamaz, siparis gunsonuna girmemis.", extra={"ERRORCODE": "CORE-2508"})
    amount_minor = int(Decimal(total or "0") * 100)
    if payment.status != "S" or amount_minor <= 0 or payment.refunded_minor + amount_minor > payment.amount_minor:
        return _api_answer(oid=payment.oid, response="Declined", code="99", message="İade tutarı hatalı")
    payment.refunded_minor += amount_minor
    return _api_answer(oid=payment.oid, response="Approved", code="00", auth_code=payment.auth_code,
                       trans_id=secrets.token_hex(7), host_ref_num=payment.host_ref_num)


def _order_status(oid: str, payment: Payment | None):
    if payment is None:
        return _api_answer(oid=oid, response="Approved", code="00", extra={"TRANS_STAT": "ERR"})
    stat = "V" if payment.status == "V" else "S"
    return _api_answer(oid=oid, response="Approved", code="00", auth_code=payment.auth_code, extra={
        "TRANS_STAT": stat,
        "CAPTURE_AMT": str(payment.amount_minor - payment.refunded_minor if stat == "S" else 0),
        "ORIG_TRANS_AMT": str(payment.amount_minor),
        "AUTH_CODE": payment.auth_code,
        "REFUNDED_AMT": str(payment.refunded_minor),
    })
