"""Features from raw videos: I3D RGB + TV-L1 flow in the released format (``hamnet extract``).

``pipeline.extract_videos`` is the entry point; ``i3d`` holds the network, ``video`` the
decoding, ``flow`` the optical flow, ``snippets`` the 16-frame chunking, ``shards`` the
multi-process merge, ``store_meta`` a store's recipe and zero-snippet list (synthetic
test videos live in tests/extract/testvideo.py). PyAV and OpenCV come with
the optional extra (``pip install 'hamnet[extract]'``) and are imported on first use.
"""
