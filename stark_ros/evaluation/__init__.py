"""Benchmark evaluation: run trackers over datasets (runner), write and read results (results), score them with
a toolkit's protocol (metrics, protocols), and report (tables, plots). Metrics never read files."""
from .metrics import ResultsError, Scores, TrackRecord
from .protocols import PROTOCOLS, score

__all__ = ['PROTOCOLS', 'ResultsError', 'Scores', 'TrackRecord', 'score']
