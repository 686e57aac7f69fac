"""Griffe extension for the API reference: Sphinx cross-reference roles -> code spans.

adelia's docstrings name other objects as Sphinx does (:func:`make_lincomb`,
:class:`~adelia.results.InlaResult`); MkDocs' Markdown would print the role verbatim, so the
role is rewritten to a code span before mkdocstrings parses the docstring. A leading ``~``
keeps only the last dotted component, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")


def _replace(match: re.Match) -> str:
    tilde, target = match.groups()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring that griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_replace, obj.docstring.value)
