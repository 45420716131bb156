"""The one way to get a card payment provider: `gateway()`, the configured one, or one by the name a payment
row keeps. A second provider is a module beside nestpay_gateway.py and an entry here."""
from collections.abc import Mapping

from .base import PaymentGateway
from .nestpay_gateway import NestPayGateway

PROVIDERS: dict[str, type[PaymentGateway]] = {NestPayGateway.name: NestPayGateway}
DEFAULT = NestPayGateway.name


def gateway(name: str = DEFAULT, values: Mapping | None = None) -> PaymentGateway:
    """The provider `name`, reading its settings now (or from `values`, e.g. settings about to be saved)."""
    return PROVIDERS[name](values)
