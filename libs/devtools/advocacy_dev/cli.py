"""``advocacy``: the developer command line (the dev stack, dev tokens, the demo).

Services add their own command groups as entry points of the group :data:`ENTRY_POINTS`
(``[project.entry-points."advocacy.cli"]`` in ``pyproject.toml``): each names a ``typer.Typer``,
registered as ``advocacy <name> ...``. The library names no service: what is installed is what the
command line offers.
"""

from __future__ import annotations

import os
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

# The entry-point group where services declare their command groups (name -> a typer.Typer).
ENTRY_POINTS = "advocacy.cli"

app = typer.Typer(
    name="advocacy",
    help="Employee advocacy platform: developer tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
dev_app = typer.Typer(help="The embedded development stack (PostgreSQL + Tansu + the four services).")
app.add_typer(dev_app, name="dev", no_args_is_help=True)


class TokenRole(StrEnum):
    admin = "admin"
    employee = "employee"
    coach = "coach"
    partner = "partner"


def _data_dir(value: Path | None) -> Path:
    return (value or Path(os.environ.get("ADVOCACY_DATA_DIR") or ".data")).absolute()


DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="State directory (default: $ADVOCACY_DATA_DIR or ./.data).", show_default=False),
]


@dev_app.command("run")
def dev_run() -> None:
    """Start PostgreSQL, the broker and the four services in the foreground (Ctrl-C stops all).

    DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS use servers of your own instead of the embedded ones;
    ADVOCACY_PG_PORT (5433), ADVOCACY_KAFKA_PORT (9092) and ADVOCACY_DATA_DIR (./.data) move them.
    """
    from advocacy_dev.devstack.stack import run

    raise typer.Exit(run())


@app.command()
def mail(
    number: Annotated[int | None, typer.Argument(help="Print this message (as numbered by the list).", min=1)] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List the mail the dev stack's SMTP server kept (`make run`), or print message NUMBER."""
    from advocacy_dev.devstack.mail import kept, show

    messages = kept(_data_dir(data_dir) / "mail")
    if number is None:
        if not messages:
            typer.echo("no mail yet (the dev stack's SMTP server keeps what the notifications service sends)")
        for m in messages:
            typer.echo(f"{m.number:>4}  {m.when:<16}  {m.message['To'] or ''!s:<32}  {m.message['Subject'] or ''}")
        return
    if number > len(messages):
        typer.echo(f"no message {number}: {len(messages)} kept", err=True)
        raise typer.Exit(1)
    typer.echo(show(messages[number - 1].message))


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id (the tid claim).")],
    sub: Annotated[str, typer.Option(help="Employee id (the sub claim).")],
    role: Annotated[list[TokenRole], typer.Option("--role", help="A role; repeat for several.")],
    team: Annotated[str | None, typer.Option(help="Team (the team claim).")] = None,
    name: Annotated[str | None, typer.Option(help="Display name (the name claim).")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 12 * 3600,
    data_dir: DataDirOption = None,
) -> None:
    """Print a JWT signed with the dev key that `make run` trusts (and nothing else)."""
    from advocacy_common.auth.devkeys import ensure_dev_keys, mint_token

    keys_dir = _data_dir(data_dir) / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys = ensure_dev_keys(keys_dir)
    roles = list(dict.fromkeys(r.value for r in role))
    typer.echo(mint_token(keys, tenant=tenant, sub=sub, roles=roles, team=team, name=name, ttl_seconds=ttl))


@app.command("scim-token")
def scim_token(
    tenant: Annotated[str, typer.Option(help="Tenant id: the secret names this tenant to /scim/v2.")],
    content_url: Annotated[str, typer.Option(help="The content service.")] = "http://127.0.0.1:8001",
    data_dir: DataDirOption = None,
) -> None:
    """Print a SCIM bearer secret for the tenant (dev stack): rotates it through the admin route
    (POST /v1/scim/secret/rotate, with an admin token signed by the dev key), so the previous one
    stops working. Point any SCIM client at <content>/scim/v2 with it."""
    import httpx

    from advocacy_common.auth.devkeys import ensure_dev_keys, mint_token

    keys_dir = _data_dir(data_dir) / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    admin = mint_token(ensure_dev_keys(keys_dir), tenant=tenant, sub="scim-admin", roles=["admin"], ttl_seconds=600)
    try:
        r = httpx.post(
            f"{content_url.rstrip('/')}/v1/scim/secret/rotate", headers={"Authorization": f"Bearer {admin}"}, timeout=10
        )
    except httpx.HTTPError as e:
        typer.secho(f"cannot reach the content service at {content_url} ({e}); is `make run` up?", fg="red", err=True)
        raise typer.Exit(1) from e
    if r.status_code != 200:
        typer.secho(f"the content service answered {r.status_code}: {r.text[:300]}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(r.json()["secret"])


@app.command()
def demo(
    content_url: Annotated[str, typer.Option(help="The content service.")] = "http://127.0.0.1:8001",
    sharing_url: Annotated[str, typer.Option(help="The sharing service.")] = "http://127.0.0.1:8002",
    metrics_url: Annotated[str, typer.Option(help="The metrics service.")] = "http://127.0.0.1:8003",
    gamification_url: Annotated[str, typer.Option(help="The gamification service.")] = "http://127.0.0.1:8004",
    clicks: Annotated[int, typer.Option(help="How many clicks to send.", min=0, max=762)] = 300,
    tenant: Annotated[str | None, typer.Option(help="Tenant id (default: demo-<random>).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step to show.")] = 60.0,
    data_dir: DataDirOption = None,
) -> None:
    """Walk the platform over HTTP: publish, share, click, then read metrics and the leaderboard."""
    from advocacy_dev.demo import DemoError, DemoUrls, run_demo

    urls = DemoUrls(content=content_url, sharing=sharing_url, metrics=metrics_url, gamification=gamification_url)
    try:
        run_demo(urls, keys_dir=_data_dir(data_dir) / "keys", clicks=clicks, tenant=tenant, timeout=timeout)
    except DemoError as e:
        typer.secho(f"demo failed: {e}", fg="red", err=True)
        raise typer.Exit(1) from e


@app.command("export-person")
def export_person(
    employee_id: Annotated[str, typer.Argument(help="The person's employee id (the sub claim).")],
    token: Annotated[
        str | None, typer.Option(envvar="ADVOCACY_TOKEN", help="A bearer token: an admin's, or the person's own.")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Dev stack only: mint an admin token of this tenant.")] = None,
    content_url: Annotated[str, typer.Option(help="The content service.")] = "http://127.0.0.1:8001",
    sharing_url: Annotated[str, typer.Option(help="The sharing service.")] = "http://127.0.0.1:8002",
    metrics_url: Annotated[str, typer.Option(help="The metrics service.")] = "http://127.0.0.1:8003",
    gamification_url: Annotated[str, typer.Option(help="The gamification service.")] = "http://127.0.0.1:8004",
    notifications_url: Annotated[str, typer.Option(help="The notifications service.")] = "http://127.0.0.1:8005",
    output: Annotated[Path | None, typer.Option(help="Write the JSON here (default: standard output).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Everything the five services hold about one person, as one JSON document (the right of access).

    Each section holds at most 1000 rows (``truncated`` says when there were more)."""
    import orjson

    from advocacy_dev.person_export import ExportError, assemble

    if token is None:
        if tenant is None:
            typer.secho("give --token (or ADVOCACY_TOKEN), or --tenant on the dev stack", fg="red", err=True)
            raise typer.Exit(2)
        from advocacy_common.auth.devkeys import ensure_dev_keys, mint_token

        keys = ensure_dev_keys(_data_dir(data_dir) / "keys")
        token = mint_token(keys, tenant=tenant, sub="export-admin", roles=["admin"], ttl_seconds=600)
    urls = {
        "content": content_url,
        "sharing": sharing_url,
        "metrics": metrics_url,
        "gamification": gamification_url,
        "notifications": notifications_url,
    }
    try:
        document = assemble(urls, token, employee_id)
    except ExportError as e:
        typer.secho(f"export failed: {e}", fg="red", err=True)
        raise typer.Exit(1) from e
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")


def _register_subcommands() -> None:
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda ep: ep.name):
        app.add_typer(ep.load(), name=ep.name)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
