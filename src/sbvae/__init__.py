"""sbvae: VAEs with the Spatial Broadcast Decoder (Watters et al. 2019)."""

__version__ = "0.1.0"
