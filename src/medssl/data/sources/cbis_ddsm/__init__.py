"""CBIS-DDSM — Curated Breast Imaging Subset of DDSM (Lee et al., Sci Data 4:170177, 2017).

Layout: the four case-description CSVs (``mass_case_description_{train,test}_set.csv``,
``calc_case_description_{train,test}_set.csv``) beside the TCIA download tree
``CBIS-DDSM/<Mass-Training_P_00001_LEFT_CC>/<study uid>/<series uid>/<n>.dcm``.

Rules (``docs/datasets.md``, thesis §5.1):
- One record per full mammogram (patient, side, view), gathering its rows from all CSVs.
  Its label is the common class of its rows' ``pathology``; an image whose rows disagree
  (or have none) is dropped and listed in ``self.skipped`` with the reason — a rule, not an
  error, so also in strict mode. A pathology value outside the three known ones is an error.
- ``BENIGN_WITHOUT_CALLBACK`` is benign by default; option ``bwc_as: normal`` gives the
  thesis mapping (it counts 358 "normal" CBIS-DDSM images). Such a "normal" image still
  shows its finding, so its record says ``normal_with_finding`` and the builder never makes
  it a finetuning normal (pretraining may use it). A normal image has an all-zero mask.
- Mask: the union of the image's ROI masks. Cropped images are not used.
- DICOM paths: the CSV path is used when it exists; otherwise the file is found by the
  path's first component (the TCIA folder name), since the uids and file names inside vary
  between downloads. The tree is indexed once. An ROI folder usually holds two DICOMs (the
  ROI mask and the cropped lesion, not reliably told apart by name or CSV column): the
  loader picks the one whose size equals the full image.
- Patient id: ``patient_id`` (e.g. ``P_00001``).
- Pixel spacing: whatever the full mammogram's DICOM header carries (``Loaded.spacing``).
"""

from medssl.data.sources.cbis_ddsm.reader import CBISDDSM, load_with_rois

__all__ = ["CBISDDSM", "load_with_rois"]
