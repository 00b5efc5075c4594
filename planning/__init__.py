"""VertebroPlan's pure domain: volumes, geometry, anatomy, plans, checks and export.

Nothing in this package imports Qt or VTK (enforced by import-linter), so everything here
runs in batch mode and is tested without a display.
"""
