"""sknets: feed-forward networks and autoencoders with the scikit-learn API."""

__version__ = "0.1.0"
