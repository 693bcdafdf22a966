"""Versions of the package and of the data contracts. Bump SCHEMA_VERSION on any change to
:mod:`deft_core.schema` (and add a test for the change); bump PIPELINE_VERSION when extraction
results would change for the same input."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
PIPELINE_VERSION = "0.1.0"
