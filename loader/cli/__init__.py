"""The ``drip-loader`` command line."""
