"""The annotator's task lifecycle, end to end.

========================  ===================================================================
module                    what it does
========================  ===================================================================
:mod:`.lease`             ``next``: reclaim expired leases, hand out live leases first, then
                          gold and open items (and the PostgreSQL one-statement fast path)
:mod:`.entries`           check a submitted batch before any transaction opens
:mod:`.submit`            ``submit``: store a batch, idempotent, late work kept and marked;
                          work of a paused or failed annotator kept but left out of labels
:mod:`.submit_fast`       the PostgreSQL one-statement path of ``submit``; replays' answers
:mod:`.skip`              ``skip``: give a task back with a reason
:mod:`.checkout`          a batch under a long lease, for offline work
:mod:`.release`           a manager ends an annotator's leases; the items reopen
:mod:`.gold`              training and control gold; work on gold given is scored
:mod:`.standing`          qualifying, active, paused, failed: decided from gold, or by hand
:mod:`.standing_history`  every change of standing kept, and audited
:mod:`.relabel`           a manager sends an annotator's labels back; their items reopen
:mod:`.standing_summary`  what annotators see of their standing: aggregated and delayed
:mod:`.adaptive`          adaptive overlap: more labels while an item's label is unsure
:mod:`.openness`          ``items.is_open``, the rule every counter change keeps
:mod:`.handles`           what annotators see instead of item ids (the routes translate)
========================  ===================================================================

Each entry point declares its transaction (``lease`` or ``submit``: on the server's event
loop, see :mod:`labelfarm.db.tx`); routes run them with ``ctx.run``, the CLI and tests with
``Database.run``. Import the modules, not this package's names: the package imports nothing,
so :mod:`labelfarm.services.projects` can use :mod:`.openness` without a cycle.
"""
