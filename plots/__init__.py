"""pagelab figures: one style, one function per figure type."""
