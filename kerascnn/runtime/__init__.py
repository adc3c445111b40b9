"""What every job needs, below the models and data: job folders and atomic saves (jobs), run folders
(run_dir), progress bars (progress), figures (plots), reachability checks (network), and the only
place that touches Keras internals (compat)."""
