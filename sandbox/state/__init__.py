"""What the emulated channels know, one module per concern (see common.py)."""
