"""Evaluation tools: strict span scoring (scoring), model accuracy on annotated corpora through the
tagging pipeline (model_eval: ``biotag eval-model``), the selector's accuracy (selector_eval) and the
assertion rules' (assertion_eval). Built on the library one level up; the library does not import
them."""
