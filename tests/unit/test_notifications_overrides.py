"""A tenant's template override (issue 18): hostile sources compiled in the sandbox, refused at save
time with the part and the line, and bounded in size and cost when rendered."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from advocacy_notifications.adapters import overrides
from advocacy_notifications.adapters.overrides import Invalid

SAMPLE: dict[str, Any] = {
    "name": "Ann",
    "items": [{"title": "News <b> & more", "url": "https://example.com/1"}],
    "unsubscribe_url": "https://example.com/u",
}


def refused(part: str, source: str) -> Invalid:
    with pytest.raises(Invalid) as e:
        overrides.validate({part: source}, SAMPLE)
    return e.value


def test_a_good_override_renders_and_its_html_is_autoescaped() -> None:
    c = overrides.validate(
        {
            "subject": "{{ items|length }} for {{ name }}",
            "html": "{% for i in items %}<a href='{{ i.url }}'>{{ i.title }}</a>{% endfor %}",
        },
        SAMPLE,
    )
    assert overrides.render(c, "subject", SAMPLE) == "1 for Ann"
    assert overrides.render(c, "html", SAMPLE) == "<a href='https://example.com/1'>News &lt;b&gt; &amp; more</a>"
    assert overrides.render(c, "text", SAMPLE) is None  # not overridden: the built-in part


def test_a_syntax_error_names_the_part_and_the_line() -> None:
    e = refused("text", "Hello {{ name }}\n\n{% for i in items %}\n{{ i.title }\n{% endfor %}")
    assert (e.part, e.line) == ("text", 4)
    assert "text, line 4" in str(e)


def test_an_unknown_variable_is_refused_with_its_line_even_in_a_branch_never_taken() -> None:
    e = refused("html", "<p>{{ name }}</p>\n{% if false %}\n{{ password }}\n{% endif %}")
    assert (e.part, e.line) == ("html", 3) and "password" in e.message
    # a loop's own variable is known inside it
    overrides.validate({"text": "{% for it in items %}{{ it.url }} {{ loop.index }}{% endfor %}"}, SAMPLE)


def test_an_error_at_render_time_names_the_line() -> None:
    e = refused("text", "ok\n{{ items[0].nope }}")
    assert (e.part, e.line) == ("text", 2)


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macros"),
        ("{% for i in items recursive %}{{ loop(items) }}{% endfor %}", "recursive"),
        ("{% set a = name ~ name %}{{ a }}", "set"),
        ("{% with a = name %}{{ a }}{% endwith %}", "with"),
        ("{% include 'x' %}", "include"),
        ("{% extends 'x' %}", "extends"),
        ("{% for a in items %}{% for b in items %}{% for c in items %}{% endfor %}{% endfor %}{% endfor %}", "nested"),
        ("{{ range(1000)|length }}", "range"),
        ("{{ name * 100000 }}", "at most"),
        ("{{ 9 ** 9999 }}", "exponents"),
        ("{{ ((2 ** 64) ** 64) ** 64 }}", "up to 2**64"),
        ("{{ '%999999999d' % 1 }}", "no string formatting"),
        ("{% autoescape false %}{{ name }}{% endautoescape %}", "autoescape"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nested too deeply"),
        ("{{ name.ljust(1000000000) }}", "not allowed"),
        ("{{ name.__class__ }}", "unsafe"),
        ("{{ name|center(1000000000) }}", "filter"),
        ("{{ name|format(1) }}", "filter"),
        ("{{ cycler(1) }}", "unknown variable"),
        ("{{ name + 1 }}", "line 1: can only concatenate"),  # a TypeError at render time is a 422 too
        ("{% for i in range(100) %}{{ unsubscribe_url }}{{ unsubscribe_url }}{% endfor %}" * 60, "more than"),
    ],
)
def test_costly_or_escaping_constructs_are_refused(source: str, why: str) -> None:
    e = refused("html", source)
    assert why in str(e), str(e)


def test_sources_are_capped_in_size() -> None:
    assert "at most" in str(refused("text", "x" * (overrides.MAX_SOURCE + 1)))


def test_output_is_capped_while_rendering() -> None:
    c = overrides.validate({"text": "{% for i in range(100) %}{{ name }}{% endfor %}"}, SAMPLE)
    big = {**SAMPLE, "name": "x" * 5_000}
    with pytest.raises(Exception, match="more than"):
        overrides.render(c, "text", big)


_TOKENS = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        " for ",
        " in ",
        " endfor ",
        " if ",
        " endif ",
        " else ",
        "items",
        "name",
        "i",
        ".",
        "title",
        "(",
        ")",
        "[",
        "]",
        "|",
        "length",
        "upper",
        "join",
        "*",
        "**",
        "%",
        "~",
        "+",
        "9",
        "100",
        "'x'",
        '"',
        "\n",
        "range",
        "loop",
        "cycle",
        " recursive",
        "set ",
        "=",
        ",",
        "-",
        "raw",
        "endraw",
        "filter",
        "endfilter",
        "autoescape",
        "true",
        "false",
        "none",
        "__class__",
        "x",
    ]
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(_TOKENS, max_size=40).map("".join), st.sampled_from(overrides.PARTS))
def test_any_source_is_accepted_or_refused_with_invalid_never_another_error(source: str, part: str) -> None:
    try:
        c = overrides.validate({part: source}, SAMPLE)
    except Invalid as e:
        assert e.part == part
        return
    out = overrides.render(c, part, SAMPLE)
    if not source:  # nothing: the built-in part
        assert out is None
    else:
        assert out is not None and len(out) <= overrides.MAX_OUTPUT
