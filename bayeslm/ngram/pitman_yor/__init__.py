"""The hierarchical Pitman-Yor LM: the model, its seating state, the Gibbs kernels and the PyMC step."""
