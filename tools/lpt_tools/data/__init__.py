"""Functions behind the data-set tools (not imported by ``lpt_mmpretrain``):

- :mod:`.verify`: decode every image of a config's data sets
  (``tools/misc/verify_dataset.py``);
- :mod:`.resize`: pre-shrink a data set's images
  (``tools/dataset_converters/resize_images.py``);
- :mod:`.loader_benchmark`: images/s of the training pipeline per worker
  process (``tools/analysis_tools/benchmark_dataloader.py``).
"""
