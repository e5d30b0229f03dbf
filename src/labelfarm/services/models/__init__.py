"""Model versions: training sets, the model store, evaluation, promotion and the predictions
they write."""
