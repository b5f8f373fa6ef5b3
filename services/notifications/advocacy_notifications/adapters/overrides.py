"""A tenant's own wording of a message: template sources written by a tenant's admin, compiled and
rendered in Jinja2's sandbox with bounded size and cost.

The sources are hostile input (an admin's account can be stolen; a template runs on our workers for
every message of the tenant), so a source is accepted only when all of this holds:

- at most :data:`MAX_SOURCE` characters per part (subject, text, HTML);
- it compiles in :class:`_Sandbox` (Jinja2's ``SandboxedEnvironment``: no ``_`` attributes, no
  unsafe methods), HTML autoescaped, with only the filters in :data:`FILTERS` and the globals in
  :data:`GLOBALS` (``range`` capped at :data:`MAX_RANGE`);
- it has none of the constructs that make cost unbounded or reach outside the source: macros and
  ``{% call %}`` (recursion), recursive loops, ``{% set %}`` / ``{% with %}`` (a string doubled by
  each assignment grows as 2^n), include / import / extends, and no more than :data:`MAX_LOOP_DEPTH`
  nested loops; every call is refused except those in :data:`GLOBALS` and a loop's ``cycle`` and
  ``changed`` (``"x".ljust(10**9)`` is a call), and ``*`` and ``**`` are bounded;
- every variable it reads is one the message provides (the sample context of the template): a
  variable the message does not have would fail on every send, so it fails at save time instead;
- it renders against that sample context within :data:`MAX_OUTPUT` characters.

A refusal is a :class:`Invalid` naming the part and the line, which the API turns into a 422.
At send time, a stored override that fails anyway (it should not: it passed the same checks) is
reported to the caller, which falls back to the built-in template: a message is never lost to it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment

from advocacy_notifications import domain

# Part sources: a subject line and two bodies; generous for a message, small for a worker.
MAX_SOURCE = domain.MAX_TEMPLATE_SOURCE
# A rendered part: larger than any real message, small enough that a runaway template stops early.
MAX_OUTPUT = 200_000
# range() in a template: a digest lists at most 20 items; nothing needs more than this.
MAX_RANGE = 100
# Nested loops: with MAX_RANGE and 20 items, depth 2 is at most 10,000 iterations of a body.
MAX_LOOP_DEPTH = 2
# A string or list made by * or ** in a template: at most this many characters or elements.
MAX_PRODUCT = 10_000

PARTS = ("subject", "text", "html")

# Filters an override may use: formatting and lists. None of them can grow a string beyond a
# multiple of its input (no center/format/wordwrap/indent widths, no replace chains) or reach out.
SAFE_FILTERS = frozenset(
    {
        *("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "join"),
        *("last", "length", "list", "lower", "max", "min", "reverse", "round", "sort", "string"),
        *("striptags", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount"),
    }
)


class Invalid(ValueError):
    """A template source we refuse, with where: ``part`` (subject, text, html) and ``line``."""

    def __init__(self, part: str, line: int | None, message: str) -> None:
        where = f"{part}, line {line}" if line is not None else part
        super().__init__(f"{where}: {message}")
        self.part = part
        self.line = line
        self.message = message


class _TooLong(Exception):
    pass


def _safe_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return r


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        numbers = isinstance(left, int | float) and isinstance(right, int | float)
        if operator == "%":  # "%999999999d" % 1 is a gigabyte: modulo of numbers only
            if not numbers:
                raise SecurityError("% is limited to numbers (no string formatting)")
            return left % right
        if operator == "**":
            if not numbers or abs(right) > 64 or abs(left) > 2**64:
                raise SecurityError("** is limited to numbers up to 2**64 and exponents up to 64")
            return left**right
        # operator == "*": a sequence repeated, or two numbers
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_PRODUCT:
                raise SecurityError(f"* may make at most {MAX_PRODUCT} characters or items")
        return left * right

    def call(
        __self,
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        allowed = __obj is _safe_range or isinstance(getattr(__obj, "__self__", None), LoopContext)
        if not allowed:
            raise SecurityError(f"calling {getattr(__obj, '__name__', type(__obj).__name__)!r} is not allowed")
        return super().call(__context, __obj, *args, **kwargs)


def _environment(*, html: bool) -> _Sandbox:
    env = _Sandbox(autoescape=html, undefined=jinja2.StrictUndefined, auto_reload=False)
    env.filters = {k: v for k, v in env.filters.items() if k in SAFE_FILTERS}
    env.globals = {"range": _safe_range}
    return env


_HTML = _environment(html=True)
_TEXT = _environment(html=False)


def add_filters(filters: Mapping[str, Callable[..., Any]]) -> None:
    """Filters the service's own templates have (dates and numbers in the reader's language), made
    available to overrides too; they must be bounded in cost like the others."""
    for env in (_HTML, _TEXT):
        env.filters.update(filters)


@dataclass(frozen=True, slots=True)
class Compiled:
    """An override's three parts, compiled (a part left empty uses the built-in one)."""

    subject: jinja2.Template | None
    text: jinja2.Template | None
    html: jinja2.Template | None

    def part(self, name: str) -> jinja2.Template | None:
        tpl: jinja2.Template | None = getattr(self, name)
        return tpl


def _forbidden(tree: nodes.Template) -> tuple[int, str] | None:
    """The first construct we refuse, with its line."""
    refused: tuple[tuple[type[nodes.Node], str], ...] = (
        (nodes.Macro, "macros are not allowed"),
        (nodes.CallBlock, "{% call %} is not allowed"),
        (nodes.Assign, "{% set %} is not allowed"),
        (nodes.AssignBlock, "{% set %} is not allowed"),
        (nodes.With, "{% with %} is not allowed"),
        (nodes.Include, "include is not allowed"),
        (nodes.Import, "import is not allowed"),
        (nodes.FromImport, "import is not allowed"),
        (nodes.Extends, "extends is not allowed"),
        # {% autoescape false %} would let a person's name or a title write HTML into the message
        (nodes.EvalContextModifier, "{% autoescape %} is not allowed"),
    )
    for kind, why in refused:
        for node in tree.find_all(kind):
            return node.lineno, why
    return _loops(tree, 0)


def _loops(node: nodes.Node, depth: int) -> tuple[int, str] | None:
    for child in node.iter_child_nodes():
        d = depth
        if isinstance(child, nodes.For):
            if child.recursive:
                return child.lineno, "recursive loops are not allowed"
            d += 1
            if d > MAX_LOOP_DEPTH:
                return child.lineno, f"at most {MAX_LOOP_DEPTH} nested loops"
        found = _loops(child, d)
        if found is not None:
            return found
    return None


def _unknown_variable(tree: nodes.Template, known: set[str]) -> tuple[int, str] | None:
    """A variable read that neither the message nor the template itself provides (loop variables)."""
    bound = {"loop", *_TEXT.globals} | {
        n.name
        for f in tree.find_all(nodes.For)
        for n in (f.target, *f.target.find_all(nodes.Name))
        if isinstance(n, nodes.Name)
    }
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in known and name.name not in bound:
            return name.lineno, f"unknown variable {name.name!r} (this message has: {', '.join(sorted(known))})"
    return None


def _line_of(e: BaseException) -> int | None:
    """The template line a render error came from (Jinja2 rewrites its frames to the template's)."""
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


def compile_part(part: str, source: str, known: set[str]) -> jinja2.Template:
    """Check and compile one part; :class:`Invalid` (with the line) when refused."""
    if len(source) > MAX_SOURCE:
        raise Invalid(part, None, f"at most {MAX_SOURCE} characters")
    env = _HTML if part == "html" else _TEXT
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise Invalid(part, e.lineno, e.message or "syntax error") from None
    except RecursionError:  # "((((...))))" thousands deep
        raise Invalid(part, None, "nested too deeply") from None
    found = _forbidden(tree) or _unknown_variable(tree, known)
    if found is not None:
        raise Invalid(part, *found)
    try:
        return env.from_string(tree)
    except jinja2.TemplateError as e:  # an unknown filter or test is found when compiling
        raise Invalid(part, getattr(e, "lineno", None), str(e.message or e)) from None
    except (RecursionError, SyntaxError, MemoryError):  # the generated Python too deep for the compiler
        raise Invalid(part, None, "nested too deeply") from None


def render_part(tpl: jinja2.Template, context: Mapping[str, Any], limit: int = MAX_OUTPUT) -> str:
    """Render, stopping as soon as the output passes ``limit`` characters."""
    out: list[str] = []
    size = 0
    chunks: Iterator[str] = tpl.generate(context)
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _TooLong(f"renders to more than {limit} characters")
        out.append(chunk)
    return "".join(out)


def validate(sources: Mapping[str, str | None], sample: Mapping[str, Any]) -> Compiled:
    """Compile every given part and render it against ``sample`` (the message's context): a
    :class:`Invalid` with the part and line, or the compiled override."""
    compiled: dict[str, jinja2.Template | None] = {}
    for part in PARTS:
        source = sources.get(part)
        if not source:
            compiled[part] = None
            continue
        tpl = compile_part(part, source, set(sample))
        try:
            render_part(tpl, sample, limit=1_000 if part == "subject" else MAX_OUTPUT)
        except _TooLong as e:
            raise Invalid(part, None, str(e)) from None
        except Exception as e:  # whatever the sample makes it raise, it would raise on a real message
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            raise Invalid(part, _line_of(e), message) from None
        compiled[part] = tpl
    return Compiled(**compiled)


def render(compiled: Compiled, part: str, context: Mapping[str, Any]) -> str | None:
    """The part from the override, or None when the override leaves it to the built-in template.
    Raises on a failure (the caller falls back and logs)."""
    tpl = compiled.part(part)
    return None if tpl is None else render_part(tpl, context)
