"""The provider side of the compute market: machine detection, job bundles, the sandbox."""
