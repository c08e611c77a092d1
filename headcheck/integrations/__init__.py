"""Integrations with training libraries; each module imports its library, this package imports nothing.

`from headcheck.integrations.transformers import HeadcheckCallback` needs transformers; `import headcheck`
and `import headcheck.integrations` do not import it.
"""
