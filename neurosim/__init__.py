"""neurosim: what a neural network costs on real hardware, and what happens when it spikes."""
__version__ = "0.1.0"
