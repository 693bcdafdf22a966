"""Extraction stages: pure functions / callable classes on one clip or a batch, testable without Ray."""
