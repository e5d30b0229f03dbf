"""Background work: a database-backed job queue's worker, the job kinds it runs, and the
executors that run heavy work in the worker process or on a Ray cluster. See docs/jobs.md."""
