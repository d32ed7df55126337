"""The parts of the main window (biotag.desktop.main_window): actions, documents, tagging,
reviewing, exporting."""
