"""Old import path of biotag.runtime.commands.tag (the same module object)."""
import importlib
import sys

if __name__ == "__main__":   # python -m biotag.runtime.tag_cli
    import runpy

    runpy.run_module("biotag.runtime.commands.tag", run_name="__main__")
else:
    sys.modules[__name__] = importlib.import_module("biotag.runtime.commands.tag")
