"""The students' edition: with ``hide_solutions = True`` no solution reaches the page.

sphinx-exercise (1.x) drops a ``solution`` directive when ``hide_solutions`` is set,
but its gated form keeps the cells between ``solution-start`` and ``solution-end``:
``solution-start`` returns nothing, so the code cells of a gated solution (and their
outputs) would stay on the page, unlabelled. This extension replaces
``solution-start`` so that, under ``hide_solutions``, it leaves a marker, and a
transform removes everything from the marker to its ``solution-end``. Without
``hide_solutions`` (the teacher's edition) nothing changes.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node


class hidden_solution(nodes.Element):
    """Where a gated solution started; removed, with what follows up to its end, before writing."""


class StudentsSolutionStart(SolutionStartDirective):
    def run(self) -> list[nodes.Node]:
        nodes_out = super().run()  # registers the start, so the gated structure is still checked
        if self.env.app.config.hide_solutions:
            return [hidden_solution()]
        return nodes_out


class RemoveHiddenSolutions(SphinxTransform):
    # after sphinx-exercise's structure check (1), before it merges gated solutions (10)
    default_priority = 5

    def apply(self, **kwargs: Any) -> None:
        for marker in list(self.document.findall(hidden_solution)):
            parent = marker.parent
            start = parent.index(marker)
            end = next((i for i in range(start, len(parent)) if isinstance(parent[i], solution_end_node)), None)
            stop = len(parent) - 1 if end is None else end
            for child in list(parent.children[start:stop + 1]):
                parent.remove(child)


def _skip(self: Any, node: Any) -> None:
    raise nodes.SkipNode


def setup(app: Any) -> dict:
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution, html=(_skip, None), latex=(_skip, None), text=(_skip, None))
    app.add_directive("solution-start", StudentsSolutionStart, override=True)
    app.add_transform(RemoveHiddenSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
