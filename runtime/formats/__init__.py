"""biotag.runtime.formats: document readers and writers."""
