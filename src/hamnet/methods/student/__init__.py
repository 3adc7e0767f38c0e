"""FuSTAL's fully-supervised student (TriDet-style detector) on pseudo labels."""
