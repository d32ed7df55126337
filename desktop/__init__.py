"""biotag.desktop: the PySide6 desktop tagger (``biotag-gui`` / ``python -m biotag.desktop.app``).

Modules: app (entry point), main_window, entity_view (text with nested entity bars), bars (bar
geometry shared with the PDF), entity_table (table, filter, legend), review (document model and
undoable review edits), worker (tagging thread), export (HTML/PDF/data formats), settings,
dialogs (help, about, batch), fonts, screenshot. Qt is imported only inside this package.
"""
