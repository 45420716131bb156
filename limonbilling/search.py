"""A user's search text in SQL LIKE: its `%`, `_` and `\\` match themselves, not any text or character."""
from sqlalchemy import ColumnElement

LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """The text with LIKE's wildcards and the escape character itself escaped."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def contains(column, text: str) -> ColumnElement[bool]:
    """`column LIKE '%text%'` with the text taken literally, the same on SQLite and PostgreSQL."""
    return column.like(f"%{escape_like(text)}%", escape=LIKE_ESCAPE)
