"""Trusted verdicts: the grading process, not the student's kernel, decides each test cell.

(Being written: see issue 6. Until it lands this preprocessor passes notebooks through.)
"""
from nbconvert.preprocessors import Preprocessor


class TrustedVerdicts(Preprocessor):
    def preprocess(self, nb, resources):
        return nb, resources
