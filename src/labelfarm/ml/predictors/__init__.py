"""Predictors: a small protocol (fit, predict_proba, embed, save/load) and a registry of versioned names."""
