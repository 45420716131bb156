"""What a payment gateway does for LimonBilling (pretix's provider interface, cut to what we use).

A gateway starts a payment for an attempt (the form the browser posts to the
bank), turns a callback into a decision, and talks to the bank afterwards:
void, refund, status. NestPay implements it in `nestpay_gateway.py`.
"""
from abc import ABC, abstractmethod
from collections.abc import Mapping

from .nestpay import ApiResponse, CallbackDecision, Card


class PaymentGateway(ABC):
    name: str

    @abstractmethod
    def is_available(self) -> bool:
        """Configured completely and switched on: only then is the method offered to customers."""

    @abstractmethod
    def payment_form(
        self, *, oid: str, amount_minor: int, currency: str, ok_url: str, fail_url: str, lang: str,
        card: Card | None, email: str | None, name: str | None,
    ) -> tuple[str, dict[str, str]]:
        """The URL and the fields of the auto-submitting form that sends the customer to the bank."""

    @abstractmethod
    def decide(
        self, fields: Mapping[str, str], *, oid: str | None, amount_minor: int | None, currency: str | None
    ) -> CallbackDecision:
        """Verify a callback against the attempt it names (None when there is none awaiting payment)."""

    @abstractmethod
    def void(self, oid: str) -> ApiResponse: ...

    @abstractmethod
    def refund(self, oid: str, amount_minor: int, currency: str) -> ApiResponse: ...

    @abstractmethod
    def status(self, oid: str) -> ApiResponse: ...
