"""biotag.export"""
