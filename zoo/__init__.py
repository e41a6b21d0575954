"""zoo: a plugin-based zoo of generative image models for PyTorch.

    import zoo
    model = zoo.create("vae", latent_dim=16)
    run = zoo.train("vae", recipe="mnist", epochs=5)
    model = zoo.load(run.path)
    images = model.sample(16)

Attributes are imported on first use, so `import zoo` (and the `zoo` command) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # errors
    "ZooError": "zoo.errors",
    "NotFoundError": "zoo.errors",
    "InvalidInputError": "zoo.errors",
    "IncompatiblePluginError": "zoo.errors",
    "CorruptFileError": "zoo.errors",
    "UnsupportedError": "zoo.errors",
    "HubError": "zoo.errors",
    "StorageError": "zoo.errors",
    "TrainingError": "zoo.errors",
    # plugin declarations
    "FamilySpec": "zoo.plugin",
    "DatasetSpec": "zoo.plugin",
    "PLUGIN_API_VERSION": "zoo.plugin",
    # contracts
    "Encoder": "zoo.parts",
    "Decoder": "zoo.parts",
    "Prior": "zoo.parts",
    "Critic": "zoo.parts",
    "StandardNormal": "zoo.parts",
    "Family": "zoo.family",
    "FamilyConfig": "zoo.family",
    "Batch": "zoo.family",
    "LossOutput": "zoo.family",
    "Objective": "zoo.family",
    "takes_batch": "zoo.family",
    "check_codes": "zoo.family",
    "check_unit_interval": "zoo.family",
    "LatentFamily": "zoo.latent",
    "ConvLatentConfig": "zoo.latent",
    "GaussianLatentConfig": "zoo.latent",
    # factory, weights, data, training
    "create": "zoo.factory",
    "family_class": "zoo.factory",
    "register": "zoo.factory",
    "list_families": "zoo.factory",
    "load": "zoo.modelfile",
    "save": "zoo.modelfile",
    "load_dataset": "zoo.datasets.splits",
    "Splits": "zoo.datasets.splits",
    "TensorData": "zoo.datasets.splits",
    "load_recipe": "zoo.recipes",
    "Recipe": "zoo.recipes",
    "train": "zoo.trainer",
    "Run": "zoo.trainer",
    "importance_sampled_nll": "zoo.likelihood",
    "NLLEstimate": "zoo.likelihood",
    # judges of samples
    "digit_classifier": "zoo.classifier",
    "frechet_distance": "zoo.evaluation.samples",
    # evaluation
    "evaluate": "zoo.evaluation.report",
    "EvalSettings": "zoo.evaluation.report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
