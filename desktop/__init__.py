"""biotag.desktop"""
