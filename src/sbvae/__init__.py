"""sbvae: VAEs with the Spatial Broadcast Decoder (Watters et al. 2019)."""

from sbvae.allocator import keep_freed_memory

__version__ = "0.1.0"

keep_freed_memory()
