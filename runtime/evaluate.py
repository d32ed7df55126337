"""Old import path of biotag.runtime.evaluation.scoring (the same module object)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("biotag.runtime.evaluation.scoring")
