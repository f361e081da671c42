"""Training: the loop, the run folder and its checkpoints, the device, several processes."""
