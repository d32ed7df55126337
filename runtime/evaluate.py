"""Old import path of biotag.runtime.evaluation.scoring (the same module object)."""
import importlib
import sys

if __name__ == "__main__":   # python -m biotag.runtime.evaluate
    import runpy

    runpy.run_module("biotag.runtime.evaluation.scoring", run_name="__main__")
else:
    sys.modules[__name__] = importlib.import_module("biotag.runtime.evaluation.scoring")
