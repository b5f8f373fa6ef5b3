"""The pages a person sees behind a one-click share button (ADR 0016): the confirmation that
``GET`` shows (it submits itself; a button when scripts are off) and the pages that explain why a
link did nothing. Small, self-contained HTML; every value escaped."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from advocacy_common.networks import NAMES, Network

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><meta name="referrer" content="no-referrer">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; padding: 0 1em">
<h1 style="font-size: 1.4em">{title}</h1>
{body}
</body>
</html>
"""


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=escape(title), body=body)


def _board(board_url: str) -> str:
    return f'<p><a href="{escape(board_url)}">Go to your advocacy board</a> to see what you can share.</p>'


def _item(title: str | None) -> str:
    return f"<p>&ldquo;{escape(title)}&rdquo;</p>" if title else ""


def confirm(network: Network, title: str | None, action_path: str, token: str) -> str:
    """``GET``: changes nothing (mail scanners prefetch links); the form POSTs at once when scripts
    run, and its button does the same without them."""
    name = NAMES[network]
    form = (
        f'<form id="share" method="post" action="{escape(action_path)}?token={escape(quote(token))}">'
        f'<button type="submit" style="font-size: 1.1em; padding: .5em 1.2em">Share on {escape(name)}</button>'
        "</form>\n<script>document.getElementById('share').submit()</script>"
    )
    return _page(f"Share on {name}", f"{_item(title)}<p>Opening {escape(name)}&hellip;</p>{form}")


def explain(
    kind: str, board_url: str, *, title: str | None = None, reason: str | None = None, intent: str | None = None
) -> str:
    """Why the link did nothing (``kind``: used, expired, refused, malformed, busy), and where to go
    instead."""
    board = _board(board_url)
    if kind == "used":
        again = (
            f'<p>Your share is made; <a href="{escape(intent)}">open the share dialog again</a> if you did not '
            "post it yet.</p>"
            if intent
            else ""
        )
        body = f"{_item(title)}<p>This share button was already used: each works once.</p>{again}{board}"
        return _page("This share button was already used", body)
    if kind == "busy":
        body = f"<p>Too many requests came from your network just now. Try the button again in a minute.</p>{board}"
        return _page("Please try again in a minute", body)
    if kind == "expired":
        body = (
            "<p>Share buttons in messages work for a few days only, so that a forwarded message cannot share "
            f"on your behalf later. The item may still be on your board.</p>{board}"
        )
        return _page("This share button has expired", body)
    if kind == "refused":
        why = escape(reason or "this item cannot be shared by you now")
        body = f"{_item(title)}<p>It cannot be shared from here: {why}.</p>{board}"
        return _page("This item cannot be shared", body)
    body = (
        "<p>This link was not made by us, or it was cut short or altered (was it copied whole?). "
        f"Nothing was shared.</p>{board}"
    )
    return _page("This share link is not valid", body)
