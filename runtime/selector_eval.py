"""Old import path of biotag.runtime.evaluation.selector_eval (the same module object)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("biotag.runtime.evaluation.selector_eval")
