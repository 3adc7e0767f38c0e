"""Every weight file on disk: the reader and strict loader (:mod:`.files`), hamnet
checkpoints with checksums (:mod:`.checkpoint`), a trained model back from one
(:mod:`.trained`), the authors' HAM-Net checkpoints (:mod:`.authors_hamnet`) and their
import as hamnet checkpoints (:mod:`.import_authors`). The I3D weights are read with
:mod:`.files` too. Another code's checkpoints get their own ``authors_<method>.py``."""

from hamnet.weights.files import load_weights_strict, read_weight_file

__all__ = ["load_weights_strict", "read_weight_file"]
