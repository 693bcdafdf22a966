"""Dataset sources: native annotation layouts → canonical :class:`~pipelines.sources.base.ClipRecord` s.

Sources read metadata only (no video decoding) and list records lazily. Pick one by name through
:data:`pipelines.sources.base.SOURCES` / :func:`pipelines.sources.base.open_source`.
"""
