"""The `evo1` command line."""
