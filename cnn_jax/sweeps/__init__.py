"""Hyperparameter sweeps on Optuna: sweep files (spec), running trials (runner), the report."""
