"""Old import path of biotag.runtime.commands.doctor (the same module object)."""
import importlib
import sys

if __name__ == "__main__":   # python -m biotag.runtime.doctor
    import runpy

    runpy.run_module("biotag.runtime.commands.doctor", run_name="__main__")
else:
    sys.modules[__name__] = importlib.import_module("biotag.runtime.commands.doctor")
