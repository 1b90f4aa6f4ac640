"""Offline evaluation of checkpoints against recorded data (needs the model, so not in recording/)."""
