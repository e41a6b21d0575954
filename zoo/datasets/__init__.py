"""Datasets: specs of the built-in ones (light) and the in-memory splits they load into."""
