"""Old import paths of the first releases, kept for the documented entry points only:
``hamnet.engine.trainer.train`` (now :mod:`hamnet.train.trainer`) and
``hamnet.engine.predict.predict`` (now :mod:`hamnet.infer.predict`)."""
