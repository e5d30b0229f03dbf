"""Use cases as plain functions: no HTTP here, no pydantic, no SQL in the callers.

A service function declares its transaction and takes the handle first (``tx``, a
:class:`labelfarm.db.tx.Tx`; ``CoreTx`` where it also runs SQLAlchemy Core statements), or,
when it spans several transactions (an import, an export, a login's password check), is a
``@workflow`` taking the :class:`labelfarm.db.engine.Database`. Routes run them with
``ctx.run``, the CLI and tests with ``Database.run``: the same functions everywhere. The
annotator's task lifecycle lives in :mod:`labelfarm.services.tasks`.
"""
