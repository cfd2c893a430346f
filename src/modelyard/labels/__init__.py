"""The label loop: which rows to label next, labels in and out of annotation tools, and the
append-only label set the pipeline trains on.

- :mod:`~modelyard.labels.records`: the two records everything here passes around, a
  :class:`QueueItem` (a row asked to be labelled) and a :class:`LabelRecord` (a label given).
- :mod:`~modelyard.labels.store`: :class:`LabelSet`, versioned and append-only.
"""
