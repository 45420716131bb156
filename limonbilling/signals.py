"""Signals (blinker, as Indico uses them): a lower layer announces what happened, a higher one reacts.

The ledger must not know who sends e-mail or webhooks; it announces each credit movement and the
notifications service, which subscribes when it is imported (create_app imports it), decides.
"""
from blinker import Namespace

_signals = Namespace()

credits_moved = _signals.signal("credits-moved", doc="""
Credits moved on a customer's balance, inside the caller's transaction (the ledger row is flushed).

The sender is the ledger entry's kind ("usage", "adjustment", …); keyword arguments: `customer_id`,
`entry_id`, `before` and `after` (the balance), `own_low_credit_threshold` (the customer's own or None).
""")
