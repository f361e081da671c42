"""Data with exact ground truth: factor distributions, the sprite renderer, the ray-cast 3D scenes,
presets; the field's dataset files and a user's own images."""

from sbvae.data.dataset import (
    Batch,
    Dataset,
    GroundTruthDataset,
    ImageDataset,
    SceneDataset,
    SpriteDataset,
    derive_seed,
    make_generator,
    require_ground_truth,
)
from sbvae.data.factors import (
    Continuous,
    Discrete,
    FactorDistribution,
    Intersection,
    Product,
    SetMinus,
    find_factor,
)
from sbvae.data.files import FORMATS, build_dataset, open_data
from sbvae.data.presets import PRESETS, make_dataset, make_heldout_dataset
from sbvae.data.sprites import SHAPES, SpriteRenderer, hsv_to_rgb

__all__ = [
    "FORMATS",
    "PRESETS",
    "SHAPES",
    "Batch",
    "Continuous",
    "Dataset",
    "Discrete",
    "FactorDistribution",
    "GroundTruthDataset",
    "ImageDataset",
    "Intersection",
    "Product",
    "SceneDataset",
    "SetMinus",
    "SpriteDataset",
    "SpriteRenderer",
    "build_dataset",
    "derive_seed",
    "find_factor",
    "hsv_to_rgb",
    "make_dataset",
    "make_generator",
    "make_heldout_dataset",
    "open_data",
    "require_ground_truth",
]
