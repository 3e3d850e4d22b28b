"""File formats, one module per format: ``surface_h5`` (Li et al.'s layout), ``h5tree``
(pytrees inside HDF5 groups)."""
