"""The Transformer family: TinyGPT (torch), its training, the Bayesian last layer and the GPT language model."""
