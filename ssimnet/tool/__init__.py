"""The tool: segmenting your own images and slides with a trained network.

- :mod:`ssimnet.tool.segmenter` -- :class:`~ssimnet.tool.segmenter.Segmenter`, the one way to segment
- :mod:`ssimnet.tool.shipped` -- the network shipped in the package, its model card
- :mod:`ssimnet.tool.normalize` -- stain normalisation onto a reference (beyond the paper)
- :mod:`ssimnet.tool.stain_guard` -- which stain is hematoxylin, and whether an image has two to normalise
- :mod:`ssimnet.tool.resample` -- images of another pixel size resampled to the network's and back
- :mod:`ssimnet.tool.region` -- large regions tile by tile, every nucleus once across seams
- :mod:`ssimnet.tool.inputs` -- a batch's inputs: files, folders, patterns, safe output names
- :mod:`ssimnet.tool.batch` -- folders of images to files, in worker processes or on Dask
- :mod:`ssimnet.tool.geojson` -- nuclei as GeoJSON polygons (QuPath detections)
- :mod:`ssimnet.tool.viz` -- outline overlays

Nothing here imports the reproduction's book machinery (:mod:`ssimnet.book`).
"""
