"""The views keep their conventions (architecture.md: thin views, one unit of work per request).

A page view changes data only through `forms.run_service` or `forms.run_action`, which commit, or roll back
and show the refusal; the API only through its one helper (`api/views.py` `committed`), which answers a
refusal as JSON. So no view module commits, rolls back or catches a ServiceError by hand, and no view renders
by calling another view (what two views share is a helper). A button that posts only its CSRF token uses the
one shared `forms.ButtonForm`, not a form with fields it never reads.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "limonbilling"
VIEW_MODULES = sorted([*PACKAGE.glob("admin/*.py"), *PACKAGE.glob("portal/*.py"), *PACKAGE.glob("api/*.py"),
                       PACKAGE / "auth.py", PACKAGE / "two_factor_pages.py"])
API_UNIT_OF_WORK = ("api/views.py", "committed")
REFUSALS = {"ServiceError", "ValidationFailed"}
ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete", "billing_view"}


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node of the module, mapped to the name of the top-level function it is in."""
    owner = {}
    for top in tree.body:
        if isinstance(top, ast.FunctionDef):
            for node in ast.walk(top):
                owner[node] = top.name
    return owner


def _views(tree: ast.Module) -> set[str]:
    """The functions registered as views: decorated with bp.route/get/post… or billing_view(…)."""
    return {function.name for function in tree.body if isinstance(function, ast.FunctionDef)
            and any(_name(d.func if isinstance(d, ast.Call) else d) in ROUTE_DECORATORS
                    for d in function.decorator_list)}


def violations(source: str, relative_path: str, views_elsewhere: set[str] = frozenset()) -> list[str]:
    """What a view module does against the conventions, one line each."""
    tree = ast.parse(source)
    owner = _enclosing_functions(tree)
    views = _views(tree) | views_elsewhere
    found = []
    for node in ast.walk(tree):
        where = f"{relative_path}:{getattr(node, 'lineno', '?')} in {owner.get(node, 'the module')}"
        exempt = (relative_path, owner.get(node)) == API_UNIT_OF_WORK
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("commit", "rollback") and _name(node.func.value) == "session" and not exempt):
            found.append((node.lineno, f"{where}: session.{node.func.attr}() by hand"))
        if isinstance(node, ast.ExceptHandler) and node.type is not None and not exempt:
            caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if REFUSALS & {_name(exception) for exception in caught}:
                found.append((node.lineno, f"{where}: catches a service refusal by hand"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in views:
            found.append((node.lineno, f"{where}: calls the view {node.func.id}()"))
        if (isinstance(node, ast.Attribute) and node.attr == "validate_on_submit" and isinstance(node.value, ast.Call)
                and _name(node.value.func) != "ButtonForm"):
            found.append((node.lineno, f"{where}: {_name(node.value.func)} only for its CSRF token"))
    return [line for _number, line in sorted(found)]


def _views_imported_from_siblings(path: Path, tree: ast.Module) -> set[str]:
    """Names a module imports from another view module of its blueprint that are views there."""
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            sibling = path.parent / f"{node.module}.py"
            if sibling in VIEW_MODULES:
                views = _views(ast.parse(sibling.read_text()))
                imported |= {alias.asname or alias.name for alias in node.names if alias.name in views}
    return imported


def test_no_view_module_commits_catches_refusals_or_calls_a_view():
    found = []
    for path in VIEW_MODULES:
        source = path.read_text()
        found += violations(source, path.relative_to(PACKAGE).as_posix(),
                            _views_imported_from_siblings(path, ast.parse(source)))
    assert found == []


def test_the_check_finds_each_kind_of_violation():
    source = '''
@bp.route("/a", methods=["POST"])
def first():
    try:
        services.thing()
    except (KeyError, services.ServiceError):
        db.session.rollback()
    db.session.commit()
    if ToggleForm().validate_on_submit() or ButtonForm().validate_on_submit():
        return second()


@billing_view("/b")
def second():
    return "b"


def committed():
    db.session.commit()
'''
    assert [line.split(": ", 1)[1] for line in violations(source, "admin/sample.py")] == [
        "catches a service refusal by hand", "session.rollback() by hand", "session.commit() by hand",
        "ToggleForm only for its CSRF token", "calls the view second()", "session.commit() by hand"]
    assert len(violations(source, "api/views.py")) == 5  # the API's own helper may commit


def test_the_button_form_is_the_only_form_without_fields():
    """Forms with no field of their own are CSRF carriers: one shared class is enough."""
    empty = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ClassDef) and any((_name(base) or "").endswith("Form") for base in node.bases)
                    and not any(isinstance(statement, ast.Assign) for statement in node.body)):
                empty.append(f"{path.relative_to(PACKAGE).as_posix()}:{node.name}")
    assert empty == ["forms.py:ButtonForm"]
