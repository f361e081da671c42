"""Pictures of what a model learned."""

from sbvae.viz.figures import reconstructions_figure, traversals_figure
from sbvae.viz.grid import make_grid, to_uint8

__all__ = ["make_grid", "reconstructions_figure", "to_uint8", "traversals_figure"]
