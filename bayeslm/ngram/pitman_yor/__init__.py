"""The hierarchical Pitman-Yor LM: the model, its hierarchy of restaurants, the seating state, the Gibbs kernels and the PyMC step."""
