"""Old import path of biotag.runtime.commands.tag (the same module object)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("biotag.runtime.commands.tag")
