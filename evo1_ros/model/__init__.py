"""Evo-1 in PyTorch. No ROS imports here (layer rule, DESIGN.md §2)."""
