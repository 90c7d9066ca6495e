"""The control plane: the channel scheduler's control tier, calls, routing,
IVR, ACD, configuration, the panel and the `cicbox` command."""
