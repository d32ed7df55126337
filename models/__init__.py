"""biotag.models"""
