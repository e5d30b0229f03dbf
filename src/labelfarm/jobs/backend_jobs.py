"""Job kinds: calls to external model servers in Label Studio's ML-backend shape."""
