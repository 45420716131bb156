"""Idempotency keys of the JSON API, as Stripe has them: a client that sends a write request with an
`Idempotency-Key` header and retries it (after a timeout, a lost answer) gets the first answer again instead of
placing a second order or refunding twice.

The key is claimed in the request's own transaction, before the request acts, with an INSERT that a unique
index (per token and key) decides; the answer is written to the same row before the commit. So a key exists
only together with its committed effect: a refused or failed request leaves nothing, and its retry runs anew.
A second request with the key while the first one runs waits at the INSERT for it to end (PostgreSQL; SQLite
serialises writers) and then gets its answer. The same key with another request (method, path or body) is
refused. Keys are kept at least KEPT (`billing expire` removes older ones).
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from ..clock import now
from ..extensions import db, insert_ignoring_conflict
from ..models import ApiIdempotencyKey
from . import ServiceError

KEPT = timedelta(hours=24)
KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    """What a request with the key was answered (None while it runs, or if it ended without an answer)."""

    status_code: int | None
    body: str | None


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def claim(token_id: int, key: str, request_fingerprint: str) -> int | Answer:
    """Claim `key` for this request: the row's id, to `record` the answer on; or the answer an earlier request
    with the same key and the same fingerprint got."""
    if not 0 < len(key) <= KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ServiceError("idempotency_key", f"An Idempotency-Key is 1 to {KEY_LENGTH} printable ASCII characters.")
    row_id = insert_ignoring_conflict(ApiIdempotencyKey, returning=ApiIdempotencyKey.id, token_id=token_id, key=key,
                                      fingerprint=request_fingerprint, created_at=now())
    if row_id is not None:
        return row_id
    earlier = db.session.execute(select(ApiIdempotencyKey.fingerprint, ApiIdempotencyKey.status_code,
                                        ApiIdempotencyKey.body).where(ApiIdempotencyKey.token_id == token_id,
                                                                      ApiIdempotencyKey.key == key)).one()
    if earlier.fingerprint != request_fingerprint:
        raise ServiceError("idempotency_key_reused", "This Idempotency-Key was sent with another request; send a "
                                                     "new key with each new request.")
    return Answer(earlier.status_code, earlier.body)


def record(row_id: int, answer: Answer) -> None:
    db.session.execute(update(ApiIdempotencyKey).where(ApiIdempotencyKey.id == row_id)
                       .values(status_code=answer.status_code, body=answer.body))


def prune() -> int:
    """Forget keys older than KEPT; returns how many."""
    return db.session.execute(delete(ApiIdempotencyKey).where(ApiIdempotencyKey.created_at < now() - KEPT)).rowcount


def forget_answers_mentioning(text: str) -> int:
    """Forget the keys whose stored answer contains `text`: an erased customer's e-mail address (KVKK), as the
    answer to creating or reading a customer holds their details. An answer is JSON, which writes a character
    outside ASCII escaped (ç as \\u00e7): the text is looked for as it is and as the answer writes it."""
    written = {text, json.dumps(text)[1:-1]}
    return db.session.execute(delete(ApiIdempotencyKey).where(
        or_(*(ApiIdempotencyKey.body.contains(form, autoescape=True) for form in written)))).rowcount
