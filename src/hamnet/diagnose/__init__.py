"""Why a detector fails: DETAD-style false-positive, false-negative and sensitivity analysis.

Definitions follow Alwassel et al., "Diagnosing Error in Temporal Action Detectors"
(ECCV 2018) and their released code; docs/diagnosis.md lists them with the one place
where hamnet deliberately differs (videos without ground truth).
"""

from hamnet.diagnose.analysis import Diagnosis, diagnose
from hamnet.diagnose.characteristics import BIN_SETS, bin_index

__all__ = ["BIN_SETS", "Diagnosis", "bin_index", "diagnose"]
