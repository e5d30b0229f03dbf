"""Job kinds: train, predict and evaluate: the model kinds (labelfarm.services.models does the bookkeeping)."""
