"""The commands built on the biotag library: ``biotag tag`` (tag), ``biotag bench`` (bench) and
``biotag doctor`` (doctor). The library itself (Document, Pipeline, Tagger, formats, ...) lives one
level up in biotag.runtime; nothing in the library imports these modules."""
