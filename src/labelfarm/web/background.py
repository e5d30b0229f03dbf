"""Work a server process does on its own: writing the events audited in aggregate
(``AppContext.tally``) every bucket and at shutdown, and checking media stored before checks
existed. Heavier background work (refitting annotator models, training, imports) runs as jobs
in a worker process (:mod:`labelfarm.jobs`), never here."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

from labelfarm.services import image_sizes, media_check
from labelfarm.services.tasks import standing_history
from labelfarm.web.context import AppContext
from labelfarm.web.shutdown import watch_stop_signals

log = logging.getLogger("labelfarm.background")


async def flush_tally(ctx: AppContext, *, everything: bool = False) -> int:
    """Write the tally's closed buckets (every bucket with ``everything``), in a thread."""
    return await anyio.to_thread.run_sync(
        lambda: ctx.tally.flush(ctx.db, ctx.now(), everything=everything)
    )


async def tally_loop(ctx: AppContext) -> None:
    every = ctx.tally.bucket_seconds
    while True:
        await asyncio.sleep(every * random.uniform(0.5, 1.0))
        try:
            await flush_tally(ctx)
        except Exception:  # the counts stay in the tally; the next round writes them
            log.exception("writing the audit tally failed")


async def audit_standing_changes(ctx: AppContext) -> None:
    """Audit the changes of standing a rule made (the submit path cannot write the audit
    log; :mod:`labelfarm.services.tasks.standing_history`). Costs nothing when this process
    made none; a failure leaves them for the next call."""
    if not standing_history.pending():
        return
    try:
        await ctx.run(standing_history.audit_pending, now=ctx.now())
    except Exception:
        standing_history.note_pending()
        log.exception("auditing changes of standing failed")


async def check_unchecked_media(ctx: AppContext) -> None:
    """Check the files stored before media checks existed (served as attachments until
    checked), once at start, in a thread; `labelfarm media check` does the same."""
    try:
        report = await ctx.run(media_check.check_media, ctx.media, now=ctx.now())
        if report.checked:
            log.info("checked %s stored media files: %s", report.checked, report.to_dict())
        sized = await ctx.run(image_sizes.fill_image_sizes, ctx.media)
        if sized:
            log.info("stored the size of %s images imported before sizes were kept", sized)
    except Exception:  # keep serving; they stay attachments until the next start or the CLI
        log.exception("checking stored media failed")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    restore_signals = watch_stop_signals(ctx.stopping)  # imports in progress stop at once
    media = asyncio.create_task(check_unchecked_media(ctx))
    tally = asyncio.create_task(tally_loop(ctx))
    try:
        yield
    finally:
        restore_signals()
        media.cancel()
        tally.cancel()
        try:
            await flush_tally(ctx, everything=True)
        except Exception:
            log.exception("writing the audit tally at shutdown failed")
