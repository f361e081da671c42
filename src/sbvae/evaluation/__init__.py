"""Evaluation: encoding ground-truth samples, the disentanglement metrics, run-level scores."""
