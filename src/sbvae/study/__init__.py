"""`sbvae reproduce`: experiments, runs, equal-time snapshots, statistics, the wall-time ledger."""
