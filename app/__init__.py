"""VertebroPlan application layer: main window, controller, undo commands, CLI."""
