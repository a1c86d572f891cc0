"""Task generators of the built-in calibration sets: one module per task group, plus the
shared drawing toolkit (``render``) and word pools (``vocab``)."""
