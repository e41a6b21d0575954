"""Evaluation of trained models: the metric implementations (one module per kind of metric)
and `report`, which runs the metrics that apply to a model and data and writes eval.json."""
