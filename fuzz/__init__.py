"""Fuzzing of VertebroPlan's file readers (DICOM series, plan files, SR, markups, SEG).

The contract every reader is held to: for any input it returns a valid result or raises a
`planning.errors.VertebroPlanError` subclass (or an OSError for an unreadable path) whose
message names the file, and it finishes within a time limit.

- `fuzz.seeds`: small valid inputs written by the project's own writers (deterministic).
- `fuzz.strategies`: hypothesis strategies of cases (JSON-able mutation recipes).
- `fuzz.cases`: a case → files on disk → the reader's outcome, judged by the contract.
- `fuzz.run`: the long run outside CI (``python -m fuzz.run --cases 10000``).

``tests/fuzz`` runs the same properties briefly with a fixed seed in CI.
"""
