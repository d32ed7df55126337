"""Old import path of biotag.runtime.commands.bench (the same module object)."""
import importlib
import sys

if __name__ == "__main__":   # python -m biotag.runtime.bench
    import runpy

    runpy.run_module("biotag.runtime.commands.bench", run_name="__main__")
else:
    sys.modules[__name__] = importlib.import_module("biotag.runtime.commands.bench")
