"""The doors stay the only doors: nothing in `app/` writes a run's `status` outside
`app/runs/states.py`, nor an article's `status` or `site_status` outside `app/writer/states.py`.

A small linter over the syntax tree (polar keeps such rules in `scripts/linters/`). It finds:
attribute assignments (`x.status = ...`, `setattr(x, "status", ...)`), which it cannot tie to a
model, so `app/` assigns no `.status` outside the doors at all (other models write theirs in an
UPDATE, where the model shows); `.values(...)` on `update(M)` / `insert(M)` / `fenced(run)` and
`M(...)` constructors of the door models, with a status keyword or `**` it cannot read; bulk
`execute(update(M), params)`; and raw SQL that sets the columns. A statement built in one
variable and completed in another escapes it: the door modules say why that is not done.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import app
from app.models.automation import AutomationRun
from app.models.writer import Content

RUN_DOOR = "app/runs/states.py"
CONTENT_DOOR = "app/writer/states.py"
DOOR_OF = {
    "AutomationRun": {"status": RUN_DOOR},
    "Content": {"status": CONTENT_DOOR, "site_status": CONTENT_DOOR},
}
# Functions that return an UPDATE of a door model: the worker's fenced run update.
UPDATE_BUILDERS = {"fenced": "AutomationRun"}
TABLE_DOOR_OF = {AutomationRun.__tablename__: DOOR_OF["AutomationRun"]}
TABLE_DOOR_OF[Content.__tablename__] = DOOR_OF["Content"]
STATEMENT_METHODS = {"values", "ordered_values"}
EXECUTE_METHODS = {"execute", "scalar", "scalars"}
RAW_WRITE = re.compile(
    r"\b(?:update\s+(?P<updated>\w+)\s+set\b(?P<sets>.*)"
    r"|insert\s+into\s+(?P<inserted>\w+)\s*\((?P<columns>[^)]*)\))",
    re.IGNORECASE | re.DOTALL,
)
APP = Path(app.__file__).parent


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def violations(source: str, path: str) -> list[Violation]:
    """The status writes in `source` (the file at `path`) that are outside their door."""
    found: list[Violation] = []

    def outside(door: str | None, node: ast.AST, what: str) -> None:
        if door != path:
            found.append(Violation(path, getattr(node, "lineno", 0), what))

    def door_of_attribute(column: str) -> str | None:
        # `.status` is written by both doors (runs and content), `.site_status` by content's.
        doors = {d[column] for d in DOOR_OF.values() if column in d}
        return path if path in doors else None

    def check_columns(model: str, node: ast.Call, how: str) -> None:
        doors = DOOR_OF[model]
        for keyword in node.keywords:
            if keyword.arg is None:
                outside(door_of_model(model), node, f"{how} of {model} with ** (unreadable)")
            elif keyword.arg in doors:
                outside(doors[keyword.arg], node, f"{how} sets {model}.{keyword.arg}")
        for arg in node.args:
            check_parameters(model, arg, how)

    def check_parameters(model: str, arg: ast.expr, how: str) -> None:
        doors = DOOR_OF[model]
        rows = arg.elts if isinstance(arg, ast.List | ast.Tuple) else [arg]
        for row in rows:
            if not isinstance(row, ast.Dict):
                outside(door_of_model(model), row, f"{how} of {model} with unreadable parameters")
                continue
            for key in row.keys:
                if key is None:
                    outside(door_of_model(model), row, f"{how} of {model} with ** (unreadable)")
                elif isinstance(key, ast.Constant) and key.value in doors:
                    outside(doors[key.value], row, f"{how} sets {model}.{key.value}")

    for node in ast.walk(tree_of(source, path)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in flatten(targets):
                if isinstance(target, ast.Attribute) and target.attr in ("status", "site_status"):
                    outside(door_of_attribute(target.attr), node, f"assigns .{target.attr}")
        elif isinstance(node, ast.Call):
            name = called_name(node)
            if name == "setattr" and len(node.args) >= 2:
                field = node.args[1]
                if isinstance(field, ast.Constant) and field.value in ("status", "site_status"):
                    outside(door_of_attribute(field.value), node, f"setattr .{field.value}")
            elif name in DOOR_OF:
                check_columns(name, node, "constructor")
            elif name in STATEMENT_METHODS and isinstance(node.func, ast.Attribute):
                model = statement_model(node.func.value)
                if model is not None:
                    check_columns(model, node, f".{name}()")
            elif name in EXECUTE_METHODS and len(node.args) >= 2:
                model = statement_model(node.args[0])
                if model is not None:
                    check_parameters(model, node.args[1], f".{name}() parameters")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table, column in raw_writes(node.value):
                outside(TABLE_DOOR_OF[table][column], node, f"raw SQL sets {table}.{column}")
    return found


def door_of_model(model: str) -> str:
    """The one door that may write a door model's statuses however it likes."""
    (door,) = set(DOOR_OF[model].values())
    return door


def tree_of(source: str, path: str) -> ast.AST:
    return ast.parse(source, filename=path)


def flatten(targets: Sequence[ast.expr]) -> list[ast.expr]:
    flat: list[ast.expr] = []
    for target in targets:
        if isinstance(target, ast.Tuple | ast.List):
            flat.extend(flatten(target.elts))
        else:
            flat.append(target)
    return flat


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def statement_model(node: ast.expr) -> str | None:
    """The door model a statement chain (`update(M).where(...)...`) starts from, if any."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and called_name(node) not in ("update", "insert")
    ):
        node = node.func.value
    if not isinstance(node, ast.Call):
        return None
    name = called_name(node)
    if name in UPDATE_BUILDERS:
        return UPDATE_BUILDERS[name]
    if name in ("update", "insert") and node.args and isinstance(node.args[0], ast.Name):
        model = node.args[0].id
        return model if model in DOOR_OF else None
    return None


def raw_writes(sql: str) -> list[tuple[str, str]]:
    writes: list[tuple[str, str]] = []
    for match in RAW_WRITE.finditer(sql):
        table = (match["updated"] or match["inserted"]).lower()
        columns = (
            match["columns"]
            or re.split(r"\b(?:where|from|returning)\b", match["sets"], flags=re.IGNORECASE)[0]
        )
        for column in TABLE_DOOR_OF.get(table, {}):
            if re.search(rf"\b{column}\b\s*(=|,|$)", columns, re.IGNORECASE | re.MULTILINE):
                writes.append((table, column))
    return writes


def app_files() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def relative(file: Path) -> str:
    return file.relative_to(APP.parent).as_posix()


class TestNoStatusIsWrittenOutsideItsDoor:
    def test_app_writes_run_and_content_statuses_only_through_their_doors(self) -> None:
        found = [
            violation
            for file in app_files()
            for violation in violations(file.read_text(encoding="utf-8"), relative(file))
        ]
        assert found == [], "status written outside its door:\n" + "\n".join(map(str, found))

    @pytest.mark.parametrize("door", [RUN_DOOR, CONTENT_DOOR])
    def test_the_doors_themselves_are_seen_writing(self, door: str) -> None:
        """The guard is not blind to the real writes: moved anywhere else, the doors' own
        code is caught."""
        source = (APP.parent / door).read_text(encoding="utf-8")
        assert violations(source, door) == []
        assert violations(source, "app/elsewhere.py") != []


PLANTED = {
    "run attribute": "run.status = RunStatus.FAILED.value",
    "content attribute": "content.site_status = 'scheduled'",
    "tuple target": "content.status, content.site_status = 'approved', 'scheduled'",
    "annotated": "run.status: str = 'failed'",
    "setattr": "setattr(article, 'site_status', 'failed')",
    "update run": "update(AutomationRun).where(AutomationRun.id == 1).values(status='failed')",
    "update content": (
        "session.execute(update(Content).values(title='x').where(Content.id == 1)"
        ".values(site_status='published').returning(Content.id))"
    ),
    "fenced": "fenced(run).values(status='completed', heartbeat_at=now)",
    "unreadable values": "update(Content).where(Content.id == 1).values(**changes)",
    "dict values": "update(Content).values({'status': 'review'})",
    "insert": "insert(Content).values(title='x', status='approved')",
    "constructor": "session.add(AutomationRun(run_id='r', status='completed'))",
    "content constructor": "Content(title='x', site_status='published')",
    "bulk": "await session.execute(update(Content), [{'id': 1, 'status': 'approved'}])",
    "raw update": "text('UPDATE contents SET html = :h, status = :s WHERE id = :id')",
    "raw insert": "text('INSERT INTO automation_runs (run_id, status) VALUES (:r, :s)')",
}
ALLOWED = {
    "other model": "update(Image).where(Image.id == 1).values(status=ImageStatus.FAILED.value)",
    "other column": "update(AutomationRun).values(heartbeat_at=now, slice=AutomationRun.slice + 1)",
    "fenced cursor": "fenced(run).values(stage_cursor=cursor).returning(AutomationRun.status)",
    "a read": "if run.status == 'running' and content.site_status in held: pass",
    "a filter": "update(Content).where(Content.status == 'review').values(title='x')",
    "a task": "insert(Task).values(status=TaskStatus.QUEUED.value)",
    "a constructor of another model": "Keyword(keyword='k', status='mapped')",
    "raw read": "text('SELECT status FROM contents WHERE site_status = :s')",
    "raw other table": "text('UPDATE tasks SET status = :s')",
    "raw filter": "text('UPDATE contents SET html = :h WHERE status = :s')",
}


class TestTheGuardCatchesAPlantedViolation:
    @pytest.mark.parametrize("snippet", PLANTED.values(), ids=PLANTED.keys())
    def test_a_status_write_outside_the_doors_is_caught(self, snippet: str) -> None:
        assert violations(snippet, "app/stages/planted.py") != []

    @pytest.mark.parametrize("snippet", ALLOWED.values(), ids=ALLOWED.keys())
    def test_what_is_not_a_door_write_passes(self, snippet: str) -> None:
        assert violations(snippet, "app/stages/planted.py") == []

    def test_a_door_may_write_its_own_statuses_and_not_the_others(self) -> None:
        run_write = PLANTED["update run"]
        content_write = PLANTED["update content"]
        assert violations(run_write, RUN_DOOR) == []
        assert violations(content_write, CONTENT_DOOR) == []
        assert violations(run_write, CONTENT_DOOR) != []
        assert violations(content_write, RUN_DOOR) != []
