"""Commands that administer the instance: users, API tokens, the audit log, stored media."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from labelfarm.cli.common import console, fail, open_db, open_media, progress_bar
from labelfarm.errors import LabelfarmError
from labelfarm.settings import Settings

user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Check and anchor the audit log.", no_args_is_help=True)
media_app = typer.Typer(help="Check stored media files.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str | None, typer.Option(help="Password (asked for when not given).")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Workspace slug to add the user to.")
    ] = None,
    role: Annotated[str, typer.Option(help="Role in that workspace.")] = "annotator",
    superuser: Annotated[bool, typer.Option(help="Make an instance administrator.")] = False,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the pages.")] = None,
    locale: Annotated[str, typer.Option(help="Interface language (en, ta, hi).")] = "en",
) -> None:
    """Create a user, optionally with a role in a workspace."""
    from labelfarm.services import users, workspaces

    db = open_db()
    password = password or getpass.getpass(f"password for {username}: ")
    try:
        workspace_id = db.run(workspaces.workspace_by_slug, workspace)["id"] if workspace else None
        user = db.run(
            users.register,
            username=username,
            password=password,
            now=time.time(),
            workspace_id=workspace_id,
            role=role,
            is_superuser=superuser,
            display_name=display_name,
            locale=locale,
        )
    except LabelfarmError as exc:
        fail(exc)
    console.print(f"created user {username} (id {user['id']}, pseudonym {user['pseudonym']})")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Username the token acts as.")],
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "cli",
    expires_days: Annotated[float | None, typer.Option(help="Days it works (none: ever).")] = None,
) -> None:
    """Create an API token; it is printed once, on the last line, and never shown again."""
    from labelfarm.services import users

    db = open_db()
    try:
        uid = db.run(users.user_by_username, user)["id"]
        new = {"user_id": uid, "name": name, "now": time.time(), "expires_days": expires_days}
        token = db.run(users.create_token, **new)
    except LabelfarmError as exc:
        fail(exc)
    console.print(f"token {token['id']} for {user}; keep it secret, it is not shown again:")
    print(token["token"])


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        list[Path] | None, typer.Option(help="A signed anchor the log must hold (repeatable).")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The Ed25519 public key (PEM) of the anchors.")
    ] = None,
) -> None:
    """Walk the keyed hash chain of the audit log; exit 1 if a row was edited or deleted, or
    (with --anchor) if rows were removed since the anchor was signed."""
    from labelfarm.services import audit_anchor

    try:
        result = open_db().run(audit_anchor.verify_files, anchor or [], public_key)
    except LabelfarmError as exc:
        fail(exc)
    if result.ok:
        speed = f"{result.n_rows / max(result.seconds, 1e-6):,.0f} rows/s"
        console.print(f"[green]audit log intact[/green]: {result.n_rows:,} rows ({speed})")
        return
    console.print(f"[red]audit log tampered[/red]: {len(result.problems)} problem(s)")
    for p in result.problems:
        console.print(f"  row {p['id']}: {p['problem']}")
    raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor_cmd(
    key: Annotated[Path, typer.Option(exists=True, help="Ed25519 private key (PEM) to sign with.")],
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output).")
    ] = None,
    instance: Annotated[
        str | None, typer.Option(help="This instance's name, for the anchor.")
    ] = None,
) -> None:
    """Sign the audit log's head: `audit verify --anchor` later proves nothing up to it changed."""
    from labelfarm.services import audit_anchor

    try:
        anchor = open_db().run(
            audit_anchor.anchor_head, key.read_bytes(), now=time.time(), instance=instance
        )
    except LabelfarmError as exc:
        fail(exc)
    text = audit_anchor.to_json(anchor)
    _ = out.write_bytes(text) if out is not None else sys.stdout.buffer.write(text)


@audit_app.command("keygen")
def audit_keygen(
    prefix: Annotated[
        Path, typer.Argument(help="Writes PREFIX.pem (mode 0600), PREFIX.pub.pem.")
    ] = Path("audit-anchor"),
) -> None:
    """Make an Ed25519 key pair for anchors; keep the private key off the database server."""
    from labelfarm.services import audit_anchor

    try:
        private, public = audit_anchor.write_key_pair(prefix)
    except LabelfarmError as exc:
        fail(exc)
    console.print(f"wrote {private} (keep it secret) and {public}")


@media_app.command("check")
def media_check_cmd(
    batch: Annotated[int, typer.Option(help="Files checked per transaction.", min=1)] = 100,
) -> None:
    """Decode the stored files not checked yet (stored before media checks existed); until
    then they are served as attachments."""
    from labelfarm.services.media_check import check_media

    settings = Settings()
    media = open_media(settings)
    with progress_bar() as bar:
        task = bar.add_task("checking media", total=None, rows=0)
        report = open_db(settings).run(
            check_media,
            media,
            now=time.time(),
            batch=batch,
            on_progress=lambda r: bar.update(task, rows=r.checked),
        )
    console.print(
        f"checked {report.checked:,} files: {report.inline:,} inline, "
        f"{report.attachment:,} attachments, {report.missing:,} missing"
    )
    from labelfarm.services.image_sizes import fill_image_sizes

    sized = open_db(settings).run(fill_image_sizes, media, batch=batch)
    if sized:
        console.print(f"stored the size of {sized:,} images imported before sizes were kept")
    from labelfarm.services.audio_backfill import derive_missing_audio

    audio = open_db(settings).run(derive_missing_audio, media, now=time.time())
    if audio.derived or audio.failed:
        console.print(
            f"derived the waveform and listening copy of {audio.derived:,} audio files stored "
            f"before they were kept ({audio.failed:,} did not decode)"
        )
