"""Non-differentiable readouts for evaluation: multinomial logistic regression.

The released code also logs `sklearn.LogisticRegression(C=1.0)` fit on 10 examples
per class. This is the same model (L2-penalised softmax regression, penalty
1/(2C)·‖w‖² relative to the summed log-loss, unpenalised intercept), fit in NumPy by
L-BFGS (scipy) so the project needs no scikit-learn. Features are standardised
with the support set's statistics first, which makes C comparable across models.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize


def _softmax_xent(params, x, y_onehot, c):
  n, f = x.shape
  k = y_onehot.shape[1]
  w = params[: f * k].reshape(f, k)
  b = params[f * k :]
  logits = x @ w + b
  logits = logits - logits.max(axis=1, keepdims=True)
  log_z = np.log(np.exp(logits).sum(axis=1, keepdims=True))
  log_p = logits - log_z
  loss = -np.sum(y_onehot * log_p) + 0.5 / c * np.sum(w * w)
  p = np.exp(log_p)
  grad_logits = p - y_onehot
  grad_w = x.T @ grad_logits + w / c
  grad_b = grad_logits.sum(axis=0)
  return loss, np.concatenate([grad_w.ravel(), grad_b])


class LogisticRegression:
  """fit(x, y) / predict(x) / accuracy(x, y), with sklearn's C convention."""

  def __init__(self, c: float = 1.0, max_iter: int = 500):
    self.c = c
    self.max_iter = max_iter

  def fit(self, x: np.ndarray, y: np.ndarray, num_classes: int | None = None):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    self.num_classes = int(num_classes or y.max() + 1)
    self.mean = x.mean(axis=0)
    self.scale = 1.0 / np.sqrt(x.var(axis=0) + 1e-8)
    xs = (x - self.mean) * self.scale
    onehot = np.eye(self.num_classes)[y]
    f = xs.shape[1]
    init = np.zeros(f * self.num_classes + self.num_classes)
    result = scipy.optimize.minimize(
      _softmax_xent,
      init,
      args=(xs, onehot, self.c),
      jac=True,
      method="L-BFGS-B",
      options={"maxiter": self.max_iter},
    )
    self.w = result.x[: f * self.num_classes].reshape(f, self.num_classes)
    self.b = result.x[f * self.num_classes :]
    return self

  def logits(self, x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, np.float64) - self.mean) * self.scale) @ self.w + self.b

  def predict(self, x: np.ndarray) -> np.ndarray:
    return np.argmax(self.logits(x), axis=1)

  def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(self.predict(x) == np.asarray(y)))


def ridge_accuracy(
  features_support, labels_support, features_test, labels_test, num_classes, ridge_lambda: float = 0.1
) -> float:
  """Accuracy of the meta-objective's ridge readout (one-hot targets), in float64 NumPy."""
  fs = np.asarray(features_support, np.float64)
  a = np.concatenate([fs, np.ones((fs.shape[0], 1))], axis=1)
  y = np.eye(num_classes)[np.asarray(labels_support)]
  y = y - y.mean()
  penalty = np.full(a.shape[1], ridge_lambda)
  penalty[-1] = 0.0
  w = np.linalg.solve(a.T @ a + np.diag(penalty), a.T @ y)
  ft = np.asarray(features_test, np.float64)
  pred = ft @ w[:-1] + w[-1]
  return float(np.mean(np.argmax(pred, axis=1) == np.asarray(labels_test)))
