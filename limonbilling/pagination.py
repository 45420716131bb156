"""Keyset pagination for lists that grow to millions of rows (orders): no COUNT, no OFFSET.

A page is the `per_page` rows just below (`before`) or just above (`after`)
an id, read through an index that ends in the id, so each page costs the same
whether the table holds a thousand rows or a million. Lists show newest first,
or oldest first when asked; "newer" always means higher ids.
"""
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, false, true

from .extensions import db
from .models import MAX_RECORD_ID

MAX_PAGE = 1_000_000  # for the short lists paged by OFFSET (tickets, chats, requests): far past their end


def page_number(args) -> int:
    """The `?page=` of a list paged by OFFSET, between 1 and MAX_PAGE whatever a visitor types."""
    return min(max(args.get("page", 1, type=int), 1), MAX_PAGE)


def below(id_column, bound: int) -> ColumnElement[bool]:
    """`id < bound` for any whole number a visitor sends: ids lie in 1…MAX_RECORD_ID, and a bound outside a
    database integer must not reach the database (PostgreSQL refuses it)."""
    if bound > MAX_RECORD_ID:
        return true()
    return id_column < bound if bound > 0 else false()


def above(id_column, bound: int) -> ColumnElement[bool]:
    """`id > bound` for any whole number, as `below`."""
    if bound < 0:
        return true()
    return id_column > bound if bound < MAX_RECORD_ID else false()


@dataclass
class KeysetPage:
    items: list
    newer: int | None  # pass as `after` for the previous (newer) page
    older: int | None  # pass as `before` for the next (older) page


def keyset_page(statement: Select, id_column, *, before: int | None, after: int | None, per_page: int,
                oldest_first: bool = False) -> KeysetPage:
    if oldest_first:
        return _oldest_first(statement, id_column, before=before, after=after, per_page=per_page)
    if after is not None:
        rows = list(db.session.scalars(
            statement.where(above(id_column, after)).order_by(id_column.asc()).limit(per_page + 1)))
        more_newer = len(rows) > per_page
        items = list(reversed(rows[:per_page]))
        return KeysetPage(items, newer=items[0].id if more_newer and items else None,
                          older=items[-1].id if items else None)
    if before is not None:
        statement = statement.where(below(id_column, before))
    rows = list(db.session.scalars(statement.order_by(id_column.desc()).limit(per_page + 1)))
    items = rows[:per_page]
    return KeysetPage(items, newer=items[0].id if before is not None and items else None,
                      older=items[-1].id if len(rows) > per_page else None)


def _oldest_first(statement: Select, id_column, *, before: int | None, after: int | None, per_page: int) -> KeysetPage:
    if before is not None:
        rows = list(db.session.scalars(
            statement.where(below(id_column, before)).order_by(id_column.desc()).limit(per_page + 1)))
        items = list(reversed(rows[:per_page]))
        return KeysetPage(items, newer=items[-1].id if items else None,
                          older=items[0].id if len(rows) > per_page and items else None)
    if after is not None:
        statement = statement.where(above(id_column, after))
    rows = list(db.session.scalars(statement.order_by(id_column.asc()).limit(per_page + 1)))
    items = rows[:per_page]
    return KeysetPage(items, newer=items[-1].id if len(rows) > per_page else None,
                      older=items[0].id if after is not None and items else None)
