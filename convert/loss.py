"""The FaceNet triplet loss (Schroff et al., 2015), exactly as the recognition spec states it.

For ``m`` triplets of encodings (Anchor, Positive of the same person, Negative of another person), each
of shape ``(m, d)`` (``d = 128`` for FaceNet)::

    pos_dist_i = sum_k (A_ik - P_ik)^2          # squared L2 distance, summed over the d values
    neg_dist_i = sum_k (A_ik - N_ik)^2
    J = sum_i max(pos_dist_i - neg_dist_i + alpha, 0)   # summed over the m triplets: one scalar

Sums, not means: ``J`` grows with ``m``. Two entry points share one implementation
(:func:`triplet_terms`):

* :func:`triplet_loss` ``(y_true, y_pred, alpha=0.2)``: the course's function, ``y_pred`` a list or tuple
  ``[anchor, positive, negative]`` of three ``(m, d)`` tensors; ``y_true`` is ignored.
* :class:`TripletLoss`: a ``keras.losses.Loss`` for ``model.compile(loss=TripletLoss())``. Keras hands a
  loss one tensor per output, so here ``y_pred`` is one ``(m, 3 * d)`` tensor, the three encodings
  concatenated on the last axis in the order anchor, positive, negative (``d`` = last dimension // 3).
  ``y_true`` is ignored (pass any array with ``m`` rows, e.g. zeros, to ``fit``/``evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

DEFAULT_ALPHA = 0.2
"""The margin of the spec: a negative must be at least this much farther (in squared L2) than the positive."""


def triplet_terms(anchor, positive, negative, *, alpha: float = DEFAULT_ALPHA) -> tf.Tensor:
    """Per-triplet hinge ``max(pos_dist_i - neg_dist_i + alpha, 0)``; ``J`` is the sum of this vector.

    Args:
        anchor, positive, negative: float tensors (or arrays) of the same shape ``(m, d)``, encodings on
            the last axis.
        alpha: the margin, in units of squared L2 distance (>= 0).

    Returns:
        float tensor of shape ``(m,)`` (the dtype of ``anchor`` if floating, else float32), each >= 0.
    """
    anchor = tf.convert_to_tensor(anchor)
    if not anchor.dtype.is_floating:
        anchor = tf.cast(anchor, tf.float32)
    positive = tf.cast(tf.convert_to_tensor(positive), anchor.dtype)
    negative = tf.cast(tf.convert_to_tensor(negative), anchor.dtype)
    if not all(anchor.shape.is_compatible_with(t.shape) for t in (positive, negative)):
        raise ValueError(
            f"triplet encodings must have one shape (m, d): anchor {anchor.shape}, "
            f"positive {positive.shape}, negative {negative.shape}"
        )
    if alpha < 0:
        raise ValueError(f"triplet margin alpha must be >= 0, got {alpha}")
    pos_dist = tf.reduce_sum(tf.square(anchor - positive), axis=-1)
    neg_dist = tf.reduce_sum(tf.square(anchor - negative), axis=-1)
    return tf.maximum(pos_dist - neg_dist + tf.cast(alpha, anchor.dtype), 0.0)


def triplet_loss(y_true, y_pred: Sequence, alpha: float = DEFAULT_ALPHA) -> tf.Tensor:
    """The course's triplet loss ``J`` (see the module docstring): one scalar, summed over the triplets.

    Args:
        y_true: ignored (Keras losses take it; there are no labels in a triplet).
        y_pred: ``[anchor, positive, negative]``, three float tensors of shape ``(m, d)``.
        alpha: the margin (squared L2 units).

    Returns:
        scalar float tensor ``J >= 0``.
    """
    del y_true
    if not isinstance(y_pred, (list, tuple)) or len(y_pred) != 3:
        raise ValueError(
            "triplet_loss expects y_pred = [anchor, positive, negative]; for one concatenated (m, 3*d) "
            "tensor use TripletLoss"
        )
    anchor, positive, negative = y_pred
    return tf.reduce_sum(triplet_terms(anchor, positive, negative, alpha=alpha))


def split_triplets(y_pred) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Split one ``(m, 3 * d)`` tensor into ``(anchor, positive, negative)``, each ``(m, d)``."""
    y_pred = tf.convert_to_tensor(y_pred)
    width = y_pred.shape[-1]
    if y_pred.shape.rank is None or y_pred.shape.rank < 2 or width is None or width % 3:
        raise ValueError(
            f"TripletLoss expects y_pred of shape (m, 3*d) (anchor, positive, negative concatenated on "
            f"the last axis), got {y_pred.shape}"
        )
    anchor, positive, negative = tf.split(y_pred, 3, axis=-1)
    return anchor, positive, negative


@keras.saving.register_keras_serializable(package="facegate")
class TripletLoss(keras.losses.Loss):
    """The triplet loss ``J`` as a Keras loss: ``model.compile(loss=TripletLoss(alpha=0.2))``.

    ``y_pred`` is one ``(m, 3 * d)`` tensor, ``[anchor | positive | negative]`` concatenated on the last
    axis; ``y_true`` is ignored. :meth:`call` returns the ``(m,)`` per-triplet hinge terms and the
    reduction is fixed to ``"sum"``, so ``loss(y_true, y_pred)`` is exactly ``J`` of :func:`triplet_loss`
    (with ``sample_weight``, the weighted sum ``sum_i w_i * term_i``).

    What Keras reports: ``train_on_batch`` and one-batch ``evaluate`` return ``J`` of that batch. Over
    several batches, ``fit``/``evaluate`` report the batch-size-weighted mean of the per-batch ``J``
    (Keras' loss tracker), not the sum over the whole data set.
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA, *, name: str = "triplet_loss", dtype=None):
        super().__init__(name=name, reduction="sum", dtype=dtype)
        if alpha < 0:
            raise ValueError(f"triplet margin alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        del y_true
        anchor, positive, negative = split_triplets(y_pred)
        return triplet_terms(anchor, positive, negative, alpha=self.alpha)

    def get_config(self) -> dict:
        # No "reduction": it is fixed to "sum" so that the loss is exactly J.
        return {"name": self.name, "alpha": self.alpha}
