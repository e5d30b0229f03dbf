"""Job kinds: refitting projects' annotator models (the quality models), scheduled by the worker."""
