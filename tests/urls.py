"""Concrete URLs for URL-map walks: every route argument gets a sample value its converter accepts."""
from werkzeug.routing.converters import AnyConverter, IntegerConverter


def sample_url(rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif isinstance(converter, IntegerConverter):
            values[name] = 1
        else:
            values[name] = "1"
    return rule.build(values, append_unknown=False)[1]
