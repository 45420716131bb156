"""What a card payment provider does for LimonBilling, in our words (pretix's BasePaymentProvider, cut to
what we use).

A provider owns its protocol: the form that sends the customer to the bank, the bank's callback and the
attempt reference in it, refunds (a same-day void or a later credit, as its bank wants them) and the status
of a sale. The services see only the types below; NestPay implements them in `nestpay_gateway.py`, and a
second provider would be one more module and a line in `payments.gateway()`.
"""
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

CardType = Literal["visa", "mastercard"]
# Why a callback was not accepted: its signature, the attempt it names, the amount, the currency, the instalment
# count or the merchant do not match ours, 3-D Secure authentication was not good enough, or the bank declined.
DeclineReason = Literal[
    "bad_hash", "unknown_order", "amount_mismatch", "currency_mismatch", "instalment_mismatch", "client_mismatch",
    "md_status", "declined",
]
RefundOperation = Literal["void", "credit"]


class GatewayError(Exception):
    """The bank did not answer, or answered something unreadable: the outcome is unknown (ask its status before
    trying again). Messages are safe to show agents: they never carry a password."""


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    """Only the last four digits stay visible."""
    return "*" * max(len(pan) - 4, 0) + pan[-4:]


@dataclass(frozen=True, repr=False)
class Card:
    """Card data as the customer typed it: it only renders the auto-submitting form, never stored or logged."""

    pan: str
    exp_month: int
    exp_year: int  # two digits: 30 for 2030
    cvv: str
    card_type: CardType

    def __post_init__(self) -> None:
        # Messages never quote the values.
        if not re.fullmatch(r"[0-9]{12,19}", self.pan):
            raise ValueError("the card number must be 12 to 19 digits")
        if not 1 <= self.exp_month <= 12:
            raise ValueError("the expiry month must be 1 to 12")
        if not 0 <= self.exp_year <= 99:
            raise ValueError("the expiry year must have two digits")
        if not re.fullmatch(r"[0-9]{3,4}", self.cvv):
            raise ValueError("the security code must be 3 or 4 digits")
        if self.card_type not in ("visa", "mastercard"):
            raise ValueError(f"unknown card type {self.card_type!r}")

    def __repr__(self) -> str:
        return f"Card(pan={mask_pan(self.pan)!r}, cvv='***', card_type={self.card_type!r})"


@dataclass(frozen=True)
class AttemptDetails:
    """What the bank said about one attempt, kept on its payment row (None where it said nothing)."""

    transaction_id: str | None = None
    auth_code: str | None = None
    host_reference: str | None = None
    masked_pan: str | None = None
    authentication_status: str | None = None  # the 3-D Secure result code
    return_code: str | None = None
    amount: str | None = None  # the amount and currency as the bank wrote them, for people (e.g. "150.00 TRY")


@dataclass(frozen=True)
class CallbackDecision:
    """Approved, or the first failed check as `reason`; `message` is for the customer.

    `raw_fields` (card-free) are kept with the attempt; they and `details` are unverified when the reason is
    bad_hash. `money_taken` is the bank's signed word that it took the money for this attempt of this
    merchant, whether or not we accept it (half 3-D refused, amount not ours): such money must be returned.
    """

    approved: bool
    reason: DeclineReason | None
    message: str
    details: AttemptDetails
    raw_fields: dict[str, str]
    money_taken: bool = False


@dataclass(frozen=True)
class SaleStatus:
    """What the bank holds for an attempt when asked; `state` None when its answer does not say."""

    state: Literal["taken", "voided", "failed"] | None
    original_minor: int | None = None
    captured_minor: int | None = None  # what the bank still holds of it
    auth_code: str = ""
    answer: dict[str, str] = field(default_factory=dict)  # the bank's words, kept on the payment
    summary: str = ""  # a few words for the log

    @property
    def refunded_minor(self) -> int | None:
        """How much of the sale the bank has given back, when its answer tells."""
        if self.original_minor is None or self.captured_minor is None:
            return None
        return self.original_minor - self.captured_minor


@dataclass(frozen=True)
class RefundAnswer:
    """The bank's answer to a refund; `operation` is the one it took (a void may turn into a credit)."""

    succeeded: bool
    operation: RefundOperation
    return_code: str
    transaction_id: str | None = None
    message: str = ""  # the bank's text, or why it refused in words agents understand


class PaymentGateway(ABC):
    name: str

    @abstractmethod
    def is_available(self) -> bool:
        """Configured completely and switched on: only then is the method offered to customers."""

    @abstractmethod
    def is_set_up(self) -> bool:
        """Set up at some time (it may be switched off now): its callbacks can be verified and must count."""

    @property
    @abstractmethod
    def card_on_our_page(self) -> bool:
        """Whether the customer types the card on our checkout page (else on the bank's page)."""

    def check_currency(self, currency: str) -> None:
        """Raise a ServiceError when card payments in `currency` cannot be taken (every attempt would be refused)."""
        return None  # any currency the bank knows, unless a provider says otherwise

    @property
    def callback_signs_amount(self) -> bool:
        """Whether an approving callback's signature proves the amount taken; when not, the approval counts only
        as the bank's status (`sale_status`) shows the sale."""
        return True

    @abstractmethod
    def reference(self, fields: Mapping[str, str]) -> str:
        """The attempt reference a callback names (unverified until `decide`)."""

    @abstractmethod
    def payment_form(
        self, *, reference: str, amount_minor: int, currency: str, ok_url: str, fail_url: str, lang: str,
        card: Card | None, email: str | None, name: str | None, instalments: int = 1,
    ) -> tuple[str, dict[str, str]]:
        """The URL and the fields of the auto-submitting form that sends the customer to the bank;
        `instalments`: the count the card's issuer splits the amount into (1: a single payment)."""

    @abstractmethod
    def decide(
        self, fields: Mapping[str, str], *, reference: str | None, amount_minor: int | None, currency: str | None,
        instalments: int = 1,
    ) -> CallbackDecision:
        """Verify a callback against the attempt it names (None when there is none awaiting payment); a count of
        instalments other than the attempt's is refused like an amount of its own."""

    @abstractmethod
    def refund(self, reference: str, amount_minor: int, currency: str, *, operation: RefundOperation,
               whole: bool) -> RefundAnswer:
        """Give money back: `operation` is what our rules ask first (a void on the sale's bank day); the
        provider takes the other one when its bank says that applies and the refund is of the `whole` sale.
        Raises GatewayError when the outcome is unknown."""

    @abstractmethod
    def void(self, reference: str) -> RefundAnswer:
        """Cancel a sale of today outright. Raises GatewayError when the outcome is unknown."""

    @abstractmethod
    def sale_status(self, reference: str) -> SaleStatus:
        """Ask the bank what became of an attempt. Raises GatewayError when it does not answer."""
