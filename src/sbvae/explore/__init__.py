"""`sbvae explore`: a local web app to move a model's latents and watch its decoder."""
