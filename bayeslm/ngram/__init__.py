"""n-gram model families: the Dirichlet-smoothed LM and the hierarchical Pitman-Yor LM, their back-off sums and ARPA export."""
