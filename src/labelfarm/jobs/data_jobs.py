"""Job kinds: import and export started from the pages, with progress."""
